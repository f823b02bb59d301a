"""What the ranks of one job agree on: who writes, when to stop, when a checkpoint is whole.

torchrun describes each process in its environment (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``); outside torchrun a process is rank 0 of 1. The
collectives are no-ops until the trainer has initialised the process group.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class RankInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    restart: int = 0  # torchrun's restart count, and how many it allows
    max_restarts: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes checkpoints, events and the adapter to the registry."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def last_attempt(self) -> bool:
        """No restart left: an error now is the job's, not a peer's that a restart heals."""
        return self.restart >= self.max_restarts

    @classmethod
    def from_env(cls) -> RankInfo:
        env = os.environ
        return cls(rank=int(env.get("RANK", 0)), world_size=int(env.get("WORLD_SIZE", 1)),
                   local_rank=int(env.get("LOCAL_RANK", 0)),
                   local_world_size=int(env.get("LOCAL_WORLD_SIZE", 1)),
                   restart=int(env.get("TORCHELASTIC_RESTART_COUNT", 0)),
                   max_restarts=int(env.get("TORCHELASTIC_MAX_RESTARTS", 0)))


def init_process_group(rank: RankInfo, timeout_s: float = 1800.0) -> None:
    """Join the job's process group (gloo on CPU, NCCL on GPU) before the trainer does.

    torchrun 2.13 keeps one agent store across restarts of the same rendezvous round, so
    a restarted rank could read a dead attempt's gloo addresses and fail to connect
    (measured: 2 of 3 restarts). Keys go under this attempt's prefix; accelerate then
    uses the group as it finds it.
    """
    import datetime

    import torch
    import torch.distributed as dist

    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(rank.local_rank)
    backend = "nccl" if cuda else "gloo"
    timeout = datetime.timedelta(seconds=timeout_s)
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        dist.init_process_group(backend, timeout=timeout)
        return
    agent_store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]),
                                rank.world_size, is_master=False, timeout=timeout)
    dist.init_process_group(backend, store=dist.PrefixStore(f"quanta/attempt_{rank.restart}",
                                                            agent_store),
                            rank=rank.rank, world_size=rank.world_size, timeout=timeout)


def _group_ready() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def any_rank(flag: bool) -> bool:
    """True on every rank if it is True on any (a cancel seen by rank 0 stops them all at
    the same step: a rank that stopped alone would leave the others in a collective)."""
    if not _group_ready():
        return flag
    import torch
    import torch.distributed as dist

    device = f"cuda:{torch.cuda.current_device()}" if dist.get_backend() == "nccl" else "cpu"
    value = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def barrier() -> None:
    """Wait for every rank (each writes its own RNG state into a checkpoint)."""
    if _group_ready():
        import torch.distributed as dist

        dist.barrier()
