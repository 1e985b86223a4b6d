"""One scene: stuff regions over real-photo backgrounds, 3-10 textured objects with bounded occlusion.

Masks are the *visible* pixels, computed from the same rasterisation that paints the image, so the
annotation is exact. An object drawn later may hide at most half of an earlier one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import textures
from .shapes import rasterize
from .vocabulary import CATEGORY_TABLE, COLOURS, SIZES, STUFF, STUFF_NAMES

MIN_VISIBLE = 0.5  # fraction of an object that must stay visible


@dataclass
class SceneObject:
    instance_id: int
    category: str
    colour: str
    size: str
    center: tuple[float, float]  # (x, y) pixels
    radius: float
    angle: float
    mask: np.ndarray  # visible pixels
    full_area: int

    @property
    def area(self) -> int:
        return int(self.mask.sum())

    @property
    def bbox(self) -> tuple[int, int, int, int]:
        ys, xs = np.nonzero(self.mask)
        return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1

    @property
    def centroid(self) -> tuple[float, float]:
        ys, xs = np.nonzero(self.mask)
        return float(xs.mean()), float(ys.mean())

    @property
    def facts(self):
        return CATEGORY_TABLE[self.category]

    def describe(self) -> str:
        return f"{self.size} {self.colour} {self.category}"


@dataclass
class Scene:
    image: np.ndarray  # (H, W, 3) uint8
    objects: list[SceneObject]
    stuff_map: np.ndarray  # (H, W) int: index into STUFF_NAMES, -1 where nothing (never, the background is full)
    notes: dict = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        return self.image.shape[0], self.image.shape[1]

    @property
    def stuff_present(self) -> list[str]:
        return [
            STUFF_NAMES[i] for i in np.unique(self.stuff_map) if i >= 0 and self.stuff_visible(STUFF_NAMES[i]).any()
        ]

    def things_mask(self) -> np.ndarray:
        out = np.zeros(self.size, dtype=bool)
        for obj in self.objects:
            out |= obj.mask
        return out

    def stuff_visible(self, name: str) -> np.ndarray:
        return (self.stuff_map == STUFF_NAMES.index(name)) & ~self.things_mask()

    def panoptic_segments(self) -> list[tuple[str, np.ndarray, bool, int]]:
        """(class name, mask, is_thing, id): every pixel belongs to exactly one segment."""
        segments = [(o.category, o.mask, True, o.instance_id) for o in self.objects]
        for k, name in enumerate(self.stuff_present):
            segments.append((name, self.stuff_visible(name), False, 1000 + k))
        return segments

    def semantic_masks(self) -> dict[str, np.ndarray]:
        masks: dict[str, np.ndarray] = {}
        for name, mask, _, _ in self.panoptic_segments():
            masks[name] = masks.get(name, np.zeros(self.size, dtype=bool)) | mask
        return masks

    def present_classes(self) -> set[str]:
        return {name for name, mask, _, _ in self.panoptic_segments() if mask.any()}


def _stuff_layout(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """Top band (sky or wall) over a bottom band (grass, water or sand), with a wavy horizon."""
    height, width = size
    top = STUFF_NAMES.index("sky" if rng.random() < 0.7 else "wall")
    bottom = STUFF_NAMES.index(rng.choice(["grass", "water", "sand"]))
    horizon = height * rng.uniform(0.3, 0.6) + rng.uniform(2, 8) * np.sin(
        np.linspace(0, rng.uniform(2, 8), width) + rng.uniform(0, 6.3)
    )
    rows = np.arange(height)[:, None]
    stuff = np.where(rows < horizon[None, :], top, bottom).astype(np.int64)
    if rng.random() < 0.3:  # a patch of a third stuff class
        third = STUFF_NAMES.index(rng.choice([n for n in STUFF_NAMES if STUFF_NAMES.index(n) not in (top, bottom)]))
        y0, x0 = int(rng.uniform(0.65, 0.8) * height), int(rng.uniform(0, 0.6) * width)
        stuff[y0:, x0 : x0 + int(rng.uniform(0.2, 0.4) * width)] = third
    return stuff


def _paint_background(rng: np.random.Generator, stuff: np.ndarray) -> np.ndarray:
    canvas = np.zeros((*stuff.shape, 3), dtype=np.float32)
    for index in sorted(set(stuff[:, 0].tolist()) | set(stuff[-1].tolist()) | set(stuff[:, -1].tolist())):
        texture = textures.tinted(textures.patch(rng, stuff.shape), STUFF[STUFF_NAMES[index]], rng, 0.45)
        np.copyto(canvas, texture, where=(stuff == index)[..., None])
    return canvas


def generate_scene(
    rng: np.random.Generator,
    size: tuple[int, int] = (256, 256),
    num_objects: tuple[int, int] = (3, 10),
    pairs: list[tuple[str, str]] | None = None,
    required: list[tuple[str, str]] | None = None,
) -> Scene:
    """A random scene; ``pairs`` limits (category, colour) choices, ``required`` pairs are placed first."""
    height, width = size
    stuff = _stuff_layout(rng, size)
    canvas = _paint_background(rng, stuff)
    allowed = pairs or [(c, k) for c in CATEGORY_TABLE for k in COLOURS]
    wanted = int(rng.integers(num_objects[0], num_objects[1] + 1))
    plan = list(required or []) + [allowed[i] for i in rng.integers(0, len(allowed), wanted)]
    plan = plan[: max(wanted, len(required or []))]
    objects: list[SceneObject] = []
    side = min(height, width)
    for category, colour in plan:
        for _ in range(25):
            size_name = str(rng.choice(list(SIZES)))
            radius = side * rng.uniform(*SIZES[size_name])
            center = (rng.uniform(radius, width - radius), rng.uniform(radius, height - radius))
            angle = rng.uniform(0, 2 * np.pi)
            full = rasterize(category, size, center, radius, angle)
            if full.sum() < 30:
                continue
            if all(((o.mask & ~full).sum() >= MIN_VISIBLE * o.full_area) for o in objects):
                break
        else:
            continue
        for other in objects:
            other.mask = other.mask & ~full
        objects.append(
            SceneObject(len(objects) + 1, category, colour, size_name, center, radius, angle, full, int(full.sum()))
        )
        ys, xs = np.nonzero(full)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1  # texture only the object's box
        texture = textures.tinted(textures.patch(rng, (y1 - y0, x1 - x0)), COLOURS[colour], rng, 0.3)
        box = full[y0:y1, x0:x1]
        canvas[y0:y1, x0:x1][box] = texture[box]
    image = np.clip(canvas * 255 + 0.5, 0, 255).astype(np.uint8)
    return Scene(image, objects, stuff)
