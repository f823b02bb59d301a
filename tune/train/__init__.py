"""The tune worker process: claims queued jobs (``queue``), runs them (``worker``) with the
trainer (``trainer``, ``modeling``, ``methods/``, ``distributed/``), evaluates before and
after (``evaluation``), reports to experiment trackers (``tracking/``) and stores what a
job makes (``checkpoints``, ``results``). It reads jobs from the registry as the API wrote
them (``tune.plan``); it never imports ``tune.api``.
"""
