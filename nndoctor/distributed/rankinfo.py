"""Which rank this process is (from torchrun's environment) and where per-rank results go."""

from __future__ import annotations

import os
import re
import socket
import tempfile
from dataclasses import dataclass

__all__ = ["MERGE_BY_LAUNCHER", "RUN_DIR_ENV", "RankInfo", "current_rank", "default_run_dir"]

#: the folder where every rank writes its result file (a shared folder for multi-node runs)
RUN_DIR_ENV = "NNDOCTOR_RUN_DIR"
#: set by ``nndoctor run --nproc``: the launcher merges, rank 0 only writes its own result
MERGE_BY_LAUNCHER = "NNDOCTOR_MERGE_BY_LAUNCHER"


def _int_env(name: str, default: int | None = None) -> int | None:
    try:
        return int(os.environ[name])
    except (KeyError, ValueError):
        return default


@dataclass(frozen=True)
class RankInfo:
    """One process of a data-parallel job, as torchrun (or another launcher) describes it."""

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    run_id: str
    host: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def multi_node(self) -> bool:
        return self.local_world_size < self.world_size

    def run_dir(self) -> str:
        """``$NNDOCTOR_RUN_DIR``, else a folder of this launch under the temporary folder."""
        given = os.environ.get(RUN_DIR_ENV)
        return given if given else default_run_dir(self)

    def to_dict(self) -> dict[str, object]:
        return {"rank": self.rank, "world_size": self.world_size, "local_rank": self.local_rank,
                "local_world_size": self.local_world_size, "run_id": self.run_id, "host": self.host}


def default_run_dir(info: RankInfo) -> str:
    """A folder every rank of one launch on this machine agrees on without talking to the others."""
    parts = [info.run_id, os.environ.get("MASTER_ADDR", ""), os.environ.get("MASTER_PORT", ""),
             os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")]
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", "-".join(p for p in parts if p))[:120] or "run"
    return os.path.join(tempfile.gettempdir(), "nndoctor-ranks", name)


def _from_process_group() -> tuple[int | None, int | None]:
    """Rank and world size of an initialised default process group (a local query, no communication):
    launchers that do not set RANK (Lightning's, ``mp.spawn``) still initialise one."""
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
    except (ImportError, RuntimeError, ValueError):
        pass
    return None, None


def current_rank() -> RankInfo | None:
    """This process's rank, or None outside a distributed launch (RANK and WORLD_SIZE unset and no
    process group initialised)."""
    rank, world = _int_env("RANK"), _int_env("WORLD_SIZE")
    if rank is None:
        rank, world = _from_process_group()
    if rank is None or world is None or world < 1 or not 0 <= rank < world:
        return None
    local_rank = _int_env("LOCAL_RANK", 0) or 0
    local_world = _int_env("LOCAL_WORLD_SIZE", world) or world
    return RankInfo(rank=rank, world_size=world, local_rank=local_rank, local_world_size=local_world,
                    run_id=os.environ.get("TORCHELASTIC_RUN_ID", "none"), host=socket.gethostname())
