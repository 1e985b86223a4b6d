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


class Journal:
    """This process's records so far, one JSON line each, so a killed run resumes where it stopped.

    The first line is a fingerprint of the settings; a journal written under other settings (another checkpoint,
    split, sample count or number of processes) is discarded, never mixed in. A line cut short by a kill is
    dropped and its sample scored again."""

    def __init__(self, folder: Path, state, fingerprint: dict) -> None:
        self.path = Path(folder) / f"progress-{state.process_index:05d}-of-{state.num_processes:05d}.jsonl"
        self.fingerprint = json.dumps(fingerprint, sort_keys=True, default=str)
        self.records: dict[int, dict] = {}
        if self.path.exists():
            lines = self.path.read_text().splitlines()
            if lines and lines[0] == self.fingerprint:
                for line in lines[1:]:
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError:
                        continue
                    self.records[record["index"]] = record
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "w") as handle:  # rewritten clean: fingerprint + the records kept
            handle.write(self.fingerprint + "\n")
            handle.writelines(json.dumps(r) + "\n" for r in self.records.values())
        self._handle = open(self.path, "a")

    def add(self, record: dict) -> None:
        self.records[record["index"]] = record
        self._handle.write(json.dumps(record) + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()
