"""The paper's metrics (``mask_metrics``, ``coco_ap``) and the per-task evaluation loops over the world (``tasks``)."""

from .mask_metrics import IoUAccumulator, boundary_f_measure, jaccard
from .tasks import EVALUATORS, evaluate_task

__all__ = ["EVALUATORS", "IoUAccumulator", "boundary_f_measure", "evaluate_task", "jaccard"]
