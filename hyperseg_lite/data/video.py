"""Video clips: objects move, rotate, occlude each other, leave and enter, over a static stuff background.
Instance ids are stable; an object out of frame or fully hidden has an empty mask on that frame."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import textures
from .scene import Scene, SceneObject, _paint_background, _stuff_layout
from .shapes import rasterize
from .vocabulary import CATEGORIES, COLOURS, SIZES


@dataclass
class Clip:
    frames: list[np.ndarray]  # (H, W, 3) uint8
    objects: list[SceneObject]  # identities (masks on the first frame where visible)
    masks: list[np.ndarray]  # per frame: (n_objects, H, W) visible masks, rows in ``objects`` order

    @property
    def instance_ids(self) -> np.ndarray:
        return np.array([o.instance_id for o in self.objects])


def generate_clip(
    rng: np.random.Generator,
    size: tuple[int, int] = (256, 256),
    num_frames: int = 8,
    num_objects: tuple[int, int] = (2, 5),
    pairs: list[tuple[str, str]] | None = None,
) -> Clip:
    height, width = size
    stuff = _stuff_layout(rng, size)
    background = _paint_background(rng, stuff)
    allowed = pairs or [(c, k) for c in CATEGORIES for k in COLOURS]
    count = int(rng.integers(num_objects[0], num_objects[1] + 1))
    side = min(size)
    tracks = []
    for index in range(count):
        category, colour = allowed[int(rng.integers(len(allowed)))]
        size_name = str(rng.choice(list(SIZES)))
        radius = side * rng.uniform(*SIZES[size_name])
        start = np.array([rng.uniform(radius, width - radius), rng.uniform(radius, height - radius)])
        speed = rng.uniform(1.0, 4.0) * side / 256
        direction = rng.uniform(0, 2 * np.pi)
        velocity = speed * np.array([np.cos(direction), np.sin(direction)])
        if index == 0 and rng.random() < 0.5:  # one object enters from outside the frame
            start = np.array([-radius * 1.2, rng.uniform(radius, height - radius)])
            velocity = np.array([abs(velocity[0]) + 3 * side / 256, velocity[1]])
        texture = textures.tinted(textures.patch(rng, size), COLOURS[colour], rng, 0.3)
        tracks.append(
            dict(
                id=index + 1,
                category=category,
                colour=colour,
                size=size_name,
                radius=radius,
                position=start,
                velocity=velocity,
                angle=rng.uniform(0, 2 * np.pi),
                spin=rng.uniform(-0.15, 0.15),
                texture=texture,
            )
        )
    frames, masks = [], []
    for _ in range(num_frames):
        canvas = background.copy()
        full = []
        for track in tracks:
            mask = rasterize(track["category"], size, tuple(track["position"]), track["radius"], track["angle"])
            canvas[mask] = track["texture"][mask]
            full.append(mask)
        visible = []
        for i, mask in enumerate(full):
            hidden = np.zeros(size, dtype=bool)
            for later in full[i + 1 :]:
                hidden |= later
            visible.append(mask & ~hidden)
        frames.append(np.clip(canvas * 255 + 0.5, 0, 255).astype(np.uint8))
        masks.append(np.stack(visible))
        for track in tracks:
            track["position"] = track["position"] + track["velocity"]
            track["angle"] += track["spin"]
    objects = [
        SceneObject(
            t["id"],
            t["category"],
            t["colour"],
            t["size"],
            tuple(t["position"]),
            t["radius"],
            t["angle"],
            masks[0][i],
            int(masks[0][i].sum()),
        )
        for i, t in enumerate(tracks)
    ]
    return Clip(frames, objects, masks)


def as_scene(clip: Clip, frame: int) -> Scene:
    """One frame as a Scene (for expressions evaluated on a frame)."""
    objects = [
        SceneObject(
            o.instance_id,
            o.category,
            o.colour,
            o.size,
            o.center,
            o.radius,
            o.angle,
            clip.masks[frame][i],
            max(1, int(clip.masks[frame][i].sum())),
        )
        for i, o in enumerate(clip.objects)
        if clip.masks[frame][i].any()
    ]
    return Scene(clip.frames[frame], objects, np.zeros(clip.frames[frame].shape[:2], dtype=np.int64))
