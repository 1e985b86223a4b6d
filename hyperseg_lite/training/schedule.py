"""Which task each step trains, and its samples: a weighted round robin over the world's tasks."""

from __future__ import annotations

import torch

from ..data.world import World


def task_schedule(tasks: list[str], weights: dict[str, int] | None = None) -> list[str]:
    """One cycle of tasks, each ``weights[task]`` times (default 1), spread out rather than back to back.

    Equal weights give ``tasks`` in their order, so unweighted runs draw exactly what they always drew.
    """
    weights = {task: (weights or {}).get(task, 1) for task in tasks}
    total, credit, schedule = sum(weights.values()), dict.fromkeys(tasks, 0), []
    for _ in range(total):  # smooth weighted round robin: the task owed the most goes next
        for task in tasks:
            credit[task] += weights[task]
        chosen = max(tasks, key=credit.__getitem__)
        credit[chosen] -= total
        schedule.append(chosen)
    return schedule


def parse_task_weights(pairs: list[str], tasks: list[str]) -> dict[str, int]:
    """``["referring=3", "reasoning=2"]`` -> ``{"referring": 3, "reasoning": 2}``, checked against ``tasks``."""
    weights = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        if name not in tasks or not value.isdigit() or int(value) < 1:
            raise ValueError(
                f"--task-weights wants TASK=N with TASK one of {', '.join(tasks)} and N >= 1; got {pair!r}"
            )
        weights[name] = int(value)
    return weights


class StepBatches(torch.utils.data.Dataset):
    """Step number -> (task, samples), so DataLoader workers draw the world while the accelerator trains.

    Sample indices depend on the step alone, so a resumed or multi-worker run sees exactly the same batches, and
    a task drawn several times per cycle gets fresh samples each time.
    """

    def __init__(self, world: World, tasks: list[str], batch_size: int, weights: dict[str, int] | None = None):
        self.world, self.batch_size = world, batch_size
        self.schedule = task_schedule(tasks, weights)

    def __len__(self) -> int:
        return 2**62

    def __getitem__(self, step: int) -> tuple[str, list]:
        cycle, position = divmod(step, len(self.schedule))
        task = self.schedule[position]
        draw = cycle * self.schedule.count(task) + self.schedule[:position].count(task)
        first = draw * self.batch_size
        return task, [self.world.sample(task, first + i) for i in range(self.batch_size)]
