"""tools/training_log.py keeps the embedded model's history: cycles append in order, never twice."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from helpers import load_tool


def _tool():
    return load_tool("training_log")


def _run_log(path: Path, losses: list[float]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, ["step", "task", "loss", "seconds", "lr"])
        writer.writeheader()
        for step, loss in enumerate(losses, start=1):
            writer.writerow({"step": step, "task": "referring", "loss": loss, "seconds": 0.9, "lr": 1e-4})
    return path


def test_cycles_continue_the_step_count(tmp_path):
    tool = _tool()
    history = tool.append_cycle([], _run_log(tmp_path / "a.csv", [3.0, 2.0]))
    history = tool.append_cycle(history, _run_log(tmp_path / "b.csv", [1.5, 1.0, 0.5]))
    assert [int(r["cycle"]) for r in history] == [1, 1, 2, 2, 2]
    assert [int(r["total_step"]) for r in history] == [1, 2, 3, 4, 5]


def test_the_same_run_is_not_appended_twice(tmp_path):
    tool = _tool()
    run = _run_log(tmp_path / "a.csv", [3.0, 2.0])
    history = tool.append_cycle([], run)
    history = [{k: str(v) for k, v in row.items()} for row in history]  # as read back from the CSV
    with pytest.raises(SystemExit, match="already in the history"):
        tool.append_cycle(history, run)
