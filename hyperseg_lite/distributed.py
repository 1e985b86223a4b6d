"""One process or many, through accelerate: shard a list of inputs, write one file per process, merge on rank 0.

The same module runs alone (``python -m ...``) or under ``accelerate launch --num_processes N -m ...`` (many
GPUs, many machines; on a machine without GPUs ``accelerate launch --multi_gpu --num_processes N`` starts N CPU
processes that talk over gloo). Processes never exchange tensors: each writes its part to the output folder,
and after a barrier rank 0 reads every part, so what is merged is exactly what was written.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path

import torch


def process_state():
    """accelerate's ``PartialState``; on a machine without CUDA, CPU processes joined over gloo."""
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


@contextmanager
def my_share(state, items: list):
    """The contiguous slice of ``items`` this process handles (all of them when alone)."""
    with state.split_between_processes(list(items)) as mine:
        yield list(mine)


def write_atomic(path: Path, text: str) -> None:
    """Write to a temporary file beside ``path``, then rename: a killed process never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_part(folder: Path, state, records: list[dict]) -> Path:
    path = Path(folder) / f"part-{state.process_index:05d}-of-{state.num_processes:05d}.json"
    write_atomic(path, json.dumps(records))
    return path


def read_parts(folder: Path, num_processes: int) -> list[dict]:
    """Every process's records (rank 0, after the barrier), in the order of their ``index``."""
    records = []
    for rank in range(num_processes):
        path = Path(folder) / f"part-{rank:05d}-of-{num_processes:05d}.json"
        if not path.exists():
            raise RuntimeError(f"process {rank} wrote no results ({path} is missing)")
        records.extend(json.loads(path.read_text()))
    return sorted(records, key=lambda r: r["index"])
