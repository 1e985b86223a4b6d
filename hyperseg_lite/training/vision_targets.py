"""Dense targets for pretraining the image encoders on the world (stage 1), and the scenes they come from.

HyperSeg starts from towers pretrained on large data (SigLIP, a COCO Mask2Former Swin); the small presets have
no such weights, so stage 1 teaches their encoders what the world is made of from its exact annotation:
per pixel the class (12 shape categories + 5 stuff), the colour of the object (or "stuff") and whether the pixel
lies on a segment outline; per object its category (the linear-probe gate).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..data.scene import Scene
from ..data.vocabulary import ALL_CLASS_NAMES, CATEGORIES, COLOUR_NAMES
from ..data.world import World

NUM_CLASSES = len(ALL_CLASS_NAMES)  # 12 things, then 5 stuff
NUM_COLOURS = len(COLOUR_NAMES) + 1  # the last index is "not an object"
STUFF_COLOUR = len(COLOUR_NAMES)


@dataclass
class DenseTargets:
    """One scene's image and its per-pixel targets, all (H, W)."""

    image: np.ndarray  # (H, W, 3) uint8
    classes: np.ndarray  # uint8 in [0, NUM_CLASSES)
    colours: np.ndarray  # uint8 in [0, NUM_COLOURS)
    outline: np.ndarray  # bool: a pixel whose 3x3 neighbourhood holds another segment
    segments: np.ndarray  # int16 segment id per pixel (objects first, then stuff)
    object_categories: np.ndarray  # (num_objects,) category index of segments 0..num_objects-1
    object_colours: np.ndarray  # (num_objects,) colour index of the same segments


def dense_targets(scene: Scene) -> DenseTargets:
    height, width = scene.size
    classes = np.zeros((height, width), np.uint8)  # small types: a pool holds a thousand scenes
    colours = np.full((height, width), STUFF_COLOUR, np.uint8)
    segments = np.zeros((height, width), np.int16)
    objects, thing_masks = [], []
    for index, (name, mask, is_thing, _) in enumerate(scene.panoptic_segments()):
        classes[mask] = ALL_CLASS_NAMES.index(name)
        segments[mask] = index
        if is_thing:
            objects.append(CATEGORIES.index(name))
            thing_masks.append(mask)
    for obj in scene.objects:
        colours[obj.mask] = COLOUR_NAMES.index(obj.colour)
    # each thing segment's colour: the one painted on most of its pixels
    object_colours = [int(np.bincount(colours[mask], minlength=NUM_COLOURS).argmax()) for mask in thing_masks]
    grown = ndimage.maximum_filter(segments, size=3)
    shrunk = ndimage.minimum_filter(segments, size=3)
    outline = grown != shrunk
    categories, colours_of_objects = np.asarray(objects, np.int64), np.asarray(object_colours, np.int64)
    return DenseTargets(scene.image, classes, colours, outline, segments, categories, colours_of_objects)


class ScenePool:
    """A replay pool of world scenes: each step swaps a few old scenes for new ones.

    A scene costs ~65 ms to draw on one core, as much as a training step, so drawing a fresh batch every step
    would double the run; a pool that renews ``refresh`` scenes a step keeps the data fresh (a 1,024-scene pool is
    renewed every few hundred steps) at a fraction of the cost, and never over-fits a fixed set.
    """

    def __init__(self, world: World, size: int = 1024, refresh: int = 2, start: int = 0) -> None:
        self.world = world
        self.refresh = refresh
        self.next_index = start
        self.items: deque[DenseTargets] = deque(maxlen=size)
        while len(self.items) < size:
            self._draw()

    def _draw(self) -> None:
        rng = self.world.rng("semantic", self.next_index)
        self.items.append(dense_targets(self.world.scene(rng)))
        self.next_index += 1

    def batch(self, rng: np.random.Generator, batch_size: int) -> list[DenseTargets]:
        for _ in range(self.refresh):
            self._draw()
        picks = rng.integers(len(self.items), size=batch_size)
        return [self.items[int(i)] for i in picks]


def fixed_scenes(split: str, seed: int, count: int, image_size: int) -> list[DenseTargets]:
    """``count`` scenes of a split (the evaluation set of stage 1): a pure function of its arguments."""
    world = World(split, seed, image_size=image_size)
    return [dense_targets(world.scene(world.rng("semantic", index))) for index in range(count)]
