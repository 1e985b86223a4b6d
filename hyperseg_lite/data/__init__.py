"""The procedural shapes world: exact ground truth for every HyperSeg task (see ``world.World``)."""

from .scene import Scene, SceneObject, generate_scene
from .vocabulary import ALL_CLASS_NAMES, CATEGORIES, COLOUR_NAMES, SIZE_NAMES, STUFF_NAMES
from .world import HELD_OUT_PAIRS, TASKS, TRAIN_PAIRS, Sample, World

__all__ = [
    "ALL_CLASS_NAMES",
    "CATEGORIES",
    "COLOUR_NAMES",
    "HELD_OUT_PAIRS",
    "SIZE_NAMES",
    "STUFF_NAMES",
    "Sample",
    "Scene",
    "SceneObject",
    "TASKS",
    "TRAIN_PAIRS",
    "World",
    "generate_scene",
]
