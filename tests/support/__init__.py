"""The one home of test and benchmark helpers, shared by ``tests/`` and ``bench/``; not
part of the installed packages (``quanta``'s core never imports ``tune`` or these).

* ``fixtures``: registries seeded with the base model, tiny datasets, LoRA adapters
  (random or derived), tenants with keys and adapters;
* ``servers``: the tune API in a thread, ``quanta serve`` as a child process;
* ``load``: concurrent completions and their throughput, latency and server memory;
* ``faults``: SIGKILL runs against the tune API and worker, and their registry checks;
* ``fuzz``: schemathesis against the tune and serve APIs;
* ``trackers``: a live MLflow server, and a reader of wandb's offline run files;
* ``openai_schema``: responses checked against OpenAI's published schemas.

Process and port helpers the demo uses too are ``quanta.processes``. Production code
never imports this package; its submodules drive the services through their public
surfaces (HTTP, the CLI, the registry), as a client would, and import them lazily.

Import it as ``tests.support.<module>`` (``tests`` is a package): pytest puts the
repository root on ``sys.path`` (``pythonpath`` in pyproject.toml), and each benchmark adds
the root itself, as ``python bench/x.py`` puts only ``bench/`` there.
"""
