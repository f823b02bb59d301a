"""``quanta demo``: the physics expert end to end, as a new user would run it.

It drives the services only through their public surfaces (the registry, the tune HTTP
API and worker, the exporters, the OpenAI-compatible servers), like a user would.
"""
