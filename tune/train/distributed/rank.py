"""What every rank of a distributed job runs: ``python -m tune.train.distributed.rank JOB_ID``.

torchrun starts it with the rank in its environment; the launcher adds the claim to
write under and the node's shared output directory (``tune.train.distributed.launch``). Each
rank runs the one-process worker's job code (``Worker.run_rank``): all train, rank 0
alone evaluates and writes to the registry.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from quanta.console import open_registry
    from quanta.processes import exit_with_parent
    from tune.train.distributed.collective import RankInfo, init_process_group
    from tune.train.distributed.launch import WORKDIR_ENV, WORKER_ID_ENV
    from tune.train.worker import Worker

    exit_with_parent(signal.SIGKILL)  # a killed launcher takes its ranks with it
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m tune.train.distributed.rank JOB_ID", file=sys.stderr)
        return 2
    rank = RankInfo.from_env()
    logging.basicConfig(level=logging.INFO,
                        format=f"%(asctime)s rank {rank.rank} %(name)s %(message)s")
    init_process_group(rank)
    worker = Worker(open_registry(), worker_id=os.environ[WORKER_ID_ENV])
    return worker.run_rank(args[0], rank, Path(os.environ[WORKDIR_ENV]))


if __name__ == "__main__":
    sys.exit(main())
