"""One fine-tuning job across processes and nodes, on the engines made for it.

- ``launch``: the worker side. A job whose ``quanta.distributed`` asks for more than one
  process runs under torchrun (``python -m torch.distributed.run``): gloo on CPU, NCCL
  on GPU, c10d rendezvous across nodes, ``--max-restarts`` to restart every rank from
  the last checkpoint when one dies. The worker that claimed the job supervises the
  launcher; ``quanta tune node`` starts the launcher of each further node.
- ``rank``: what every rank runs (``python -m tune.train.distributed.rank JOB_ID``): the same
  job code as a one-process worker, with rank 0 alone writing to the registry.
- ``collective``: what the ranks agree on (stop together, a checkpoint is whole).
- ``kubernetes``: the same job as a Kubeflow Trainer ``TrainJob``, rendered or
  dispatched through the kubernetes client.
"""
