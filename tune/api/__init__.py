"""The tune API process: OpenAI's files, uploads, fine-tuning jobs, checkpoint permissions,
graders and models routes (``app``), one service module per resource, OpenAI's response
shapes (``objects``) and errors (``errors``). It writes jobs and the owner's requests
(cancel, pause, resume) to the registry; it never imports ``tune.train``.
"""
