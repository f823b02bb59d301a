"""The one home of test helpers, shared by ``tests/`` and ``bench/``.

* ``fixtures``: registries seeded with the base model, tiny datasets, LoRA adapters
  (random or derived), tenants with keys and adapters;
* ``servers``: the tune API in a thread, ``quanta serve`` as a child process;
* ``load``: concurrent completions and their throughput, latency and server memory;
* ``faults``: SIGKILL runs against the tune API and worker, and their registry checks;
* ``fuzz``: schemathesis against the tune and serve APIs.

Process and port helpers the demo uses too are ``quanta.processes``. Production code
never imports this package; its submodules drive the services through their public
surfaces (HTTP, the CLI, the registry), as a client would, and import them lazily.
"""
