"""Keep the embedded model's training history: append a run's ``log.csv`` as a new cycle, redraw the curve.

    python tools/training_log.py runs/lite3/log.csv          # appends cycle N+1, rewrites training_loss.png
    python tools/training_log.py                             # only redraws the curve

``assets/hyperseg-lite/training_log.csv`` has one row per step of every cycle (cycle, step, total_step, task,
loss, seconds, lr); ``training_loss.png`` plots each task's loss (moving average) against the total step, with
the cycle boundaries marked, so the model card can show whether the loss was still falling.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from hyperseg_lite.loading import EMBEDDED_CHECKPOINT  # noqa: E402

FIELDS = ["cycle", "step", "total_step", "task", "loss", "seconds", "lr"]


def read_history(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def append_cycle(history: list[dict], run_log: Path) -> list[dict]:
    cycle = max((int(row["cycle"]) for row in history), default=0) + 1
    offset = max((int(row["total_step"]) for row in history), default=0)
    with open(run_log, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise SystemExit(f"{run_log} has no steps")
    if _already_recorded(history, rows):
        raise SystemExit(f"{run_log} is already in the history (same steps, tasks and losses); nothing appended")
    return history + [
        {
            "cycle": cycle,
            "step": row["step"],
            "total_step": offset + int(row["step"]),
            "task": row["task"],
            "loss": row["loss"],
            "seconds": row["seconds"],
            "lr": row["lr"],
        }
        for row in rows
    ]


def _already_recorded(history: list[dict], rows: list[dict]) -> bool:
    """True when some cycle holds exactly these (step, task, loss) rows.

    Running the tool twice must not double a cycle."""
    wanted = [(int(r["step"]), r["task"], float(r["loss"])) for r in rows]
    for cycle in {row["cycle"] for row in history}:
        have = [(int(r["step"]), r["task"], float(r["loss"])) for r in history if r["cycle"] == cycle]
        if have == wanted:
            return True
    return False


def plot(history: list[dict], path: Path, window: int = 50) -> None:
    figure, axis = plt.subplots(figsize=(10, 5.5))
    for task in dict.fromkeys(row["task"] for row in history):
        rows = [row for row in history if row["task"] == task]
        steps = np.array([int(row["total_step"]) for row in rows])
        losses = np.array([float(row["loss"]) for row in rows])
        width = min(window, len(losses))
        smooth = np.convolve(losses, np.ones(width) / width, mode="valid")
        axis.plot(steps[width - 1 :], smooth, label=task, linewidth=1.2)
    cycles = sorted({int(row["cycle"]) for row in history})
    for cycle in cycles[1:]:
        first = min(int(row["total_step"]) for row in history if int(row["cycle"]) == cycle)
        axis.axvline(first, color="grey", linestyle="--", linewidth=0.8)
        axis.text(first, axis.get_ylim()[1], f" cycle {cycle}", va="top", fontsize=8, color="grey")
    axis.set_yscale("log")
    axis.set_xlabel("training step (all cycles)")
    axis.set_ylabel(f"loss (moving average of {window} draws of the task)")
    axis.set_title("hyperseg-lite embedded model: training loss per task")
    axis.legend(fontsize=8, ncol=3, loc="lower left")  # the cycle labels sit along the top
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_log", type=Path, nargs="?", help="a training run's log.csv to append as a new cycle")
    parser.add_argument("--folder", type=Path, default=EMBEDDED_CHECKPOINT)
    args = parser.parse_args()
    history_path = args.folder / "training_log.csv"
    history = read_history(history_path)
    if args.run_log is not None:
        history = append_cycle(history, args.run_log)
        with open(history_path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, FIELDS)
            writer.writeheader()
            writer.writerows(history)
    plot(history, args.folder / "training_loss.png")
    cycles = sorted({int(row["cycle"]) for row in history})
    print(f"{len(history)} steps in {len(cycles)} cycles -> {history_path}, {args.folder / 'training_loss.png'}")


if __name__ == "__main__":
    main()
