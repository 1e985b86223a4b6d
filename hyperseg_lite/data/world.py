"""``World``: deterministic samples for every task, by split and seed.

Splits use disjoint random streams (``train`` / ``val`` / ``test``), and the ``compositional`` split holds
category-colour pairs that the other splits never draw (each category and each colour still appears in
training with other partners). ``World(split, seed).sample(task, index)`` is a pure function of its arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..prompts import format_class_list
from ..tasks import TASK_NAMES
from .expressions import (
    colour_contrast,
    describe_uniquely,
    evaluate,
    multi_target,
    no_target,
    stated_colour,
    union,
)
from .out_of_world import OUT_OF_WORLD, out_of_world_expression
from .prompts_sampling import sample_region
from .reasoning import reasoning_question
from .scene import Scene, generate_scene
from .video import as_scene, generate_clip
from .vocabulary import ALL_CLASS_NAMES, CATEGORIES, COLOUR_NAMES, STUFF_NAMES

TASKS = TASK_NAMES  # the registry's order seeds the samples (World.rng): hyperseg_lite/tasks.py
NO_TARGET_RATE = 0.15  # share of referring samples that name nothing in the scene
SPLITS = {"train": 0, "val": 1, "test": 2, "compositional": 3}
HELD_OUT_PAIRS = tuple(
    sorted(
        {(c, COLOUR_NAMES[(3 * i) % len(COLOUR_NAMES)]) for i, c in enumerate(CATEGORIES)}
        | {(c, COLOUR_NAMES[(3 * i + 5) % len(COLOUR_NAMES)]) for i, c in enumerate(CATEGORIES[:6])}
    )
)
TRAIN_PAIRS = tuple((c, k) for c in CATEGORIES for k in COLOUR_NAMES if (c, k) not in HELD_OUT_PAIRS)


@dataclass
class Sample:
    """One training / evaluation example. Image tasks use ``image``; video tasks ``frames``.

    ``masks`` (n, H, W) answer the prompt (per frame for video: ``frame_masks``); ``labels`` give the prompt
    column each mask answers (class index, 0 for an expression, region index); ``instance_ids`` are stable ids.
    """

    task: str
    image: np.ndarray | None = None
    frames: list[np.ndarray] | None = None
    class_names: list[str] | None = None
    stuff_names: list[str] = field(default_factory=list)
    expression: str | None = None
    answer: str | None = None
    regions: list[dict] | None = None
    masks: np.ndarray | None = None
    labels: np.ndarray | None = None
    instance_ids: np.ndarray | None = None
    frame_masks: list[np.ndarray] | None = None
    no_target: bool = False
    stated_colour: str | None = None  # referring tasks: the colour the expression states for its target, if any
    # referring tasks: the category it states for its target, if any (OUT_OF_WORLD: a thing outside the world)
    stated_category: str | None = None
    # reasoning questions that relate their answer to another object by colour ("what shape is the same colour as
    # the ring?"): that object's category; what the colour relation scores' text head learns to read
    colour_anchor_category: str | None = None
    # reasoning questions whose answer is the object ranked first by a category fact ("the most corners"): its
    # category, and the categories of the scene's objects it is ranked among; what the category ranking scores'
    # text head learns
    ranked_category: str | None = None
    present_categories: list[str] | None = None
    # referring expressions built from a query: whether it names several objects ("all red objects"); what the
    # plurality head learns (None: not known, as for the out-of-world expressions)
    names_several: bool | None = None


class World:
    def __init__(
        self,
        split: str = "train",
        seed: int = 0,
        image_size: int | tuple[int, int] = 256,
        clip_length: tuple[int, int] = (8, 16),
        out_of_world_rate: float = 0.0,
        colour_contrast_rate: float = 0.0,
    ) -> None:
        """``out_of_world_rate``: share of referring samples whose no-match expression comes from outside the
        world (other nouns, languages, nonsense: ``data/out_of_world.py``); ``colour_contrast_rate``: share whose
        expression only the colour decides (``expressions.colour_contrast``). 0 keeps every split as it was."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {tuple(SPLITS)}")
        if not 0 <= out_of_world_rate <= NO_TARGET_RATE:
            raise ValueError(f"out_of_world_rate must be between 0 and the no-target share {NO_TARGET_RATE}")
        if not 0 <= colour_contrast_rate <= 1:
            raise ValueError("colour_contrast_rate must be between 0 and 1")
        self.out_of_world_rate = out_of_world_rate
        self.colour_contrast_rate = colour_contrast_rate
        self.split, self.seed = split, seed
        self.size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        self.clip_length = clip_length
        self.pairs = list(HELD_OUT_PAIRS) if split == "compositional" else list(TRAIN_PAIRS)

    def rng(self, task: str, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, SPLITS[self.split], TASKS.index(task), index])

    def scene(self, rng: np.random.Generator) -> Scene:
        if self.split == "compositional":  # at least one held-out pair, the rest from training pairs
            required = [HELD_OUT_PAIRS[int(rng.integers(len(HELD_OUT_PAIRS)))]]
            return generate_scene(rng, self.size, pairs=list(TRAIN_PAIRS), required=required)
        return generate_scene(rng, self.size, pairs=self.pairs)

    def sample(self, task: str, index: int) -> Sample:
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}")
        rng = self.rng(task, index)
        for _ in range(50):  # a few scenes do not support a task (e.g. no reasoning question): draw again
            sample = getattr(self, f"_{task}")(rng)
            if sample is not None:
                return sample
        raise RuntimeError(f"could not generate a {task} sample")

    # ------------------------------------------------------------------ class prompts
    def _class_list(self, scene: Scene, rng: np.random.Generator) -> list[str]:
        present = sorted(scene.present_classes())
        absent = [n for n in ALL_CLASS_NAMES if n not in present]
        chosen = list(rng.choice(present, size=int(rng.integers(1, len(present) + 1)), replace=False))
        chosen += list(rng.choice(absent, size=int(rng.integers(0, min(6, len(absent)) + 1)), replace=False))
        rng.shuffle(chosen)
        return [str(n) for n in chosen]

    def _class_sample(self, rng, task: str) -> Sample:
        scene = self.scene(rng)
        names = self._class_list(scene, rng)
        masks, labels, ids = [], [], []
        if task == "semantic":
            semantic = scene.semantic_masks()
            for k, name in enumerate(names):
                if name in semantic and semantic[name].any():
                    masks.append(semantic[name])
                    labels.append(k)
                    ids.append(k + 1)
        else:
            for name, mask, is_thing, seg_id in scene.panoptic_segments():
                if name in names and mask.any() and (is_thing or task == "panoptic"):
                    masks.append(mask)
                    labels.append(names.index(name))
                    ids.append(seg_id)
        return Sample(
            task,
            image=scene.image,
            class_names=names,
            stuff_names=[n for n in names if n in STUFF_NAMES],
            masks=np.array(masks, dtype=bool).reshape(-1, *self.size),
            labels=np.array(labels, dtype=np.int64),
            instance_ids=np.array(ids, dtype=np.int64),
        )

    def _semantic(self, rng):
        return self._class_sample(rng, "semantic")

    def _instance(self, rng):
        return self._class_sample(rng, "instance")

    def _panoptic(self, rng):
        return self._class_sample(rng, "panoptic")

    def _describe(self, rng):
        """Class-free naming: every class present, in the vocabulary's order (things, then stuff)."""
        scene = self.scene(rng)
        present = scene.present_classes()
        names = [name for name in ALL_CLASS_NAMES if name in present]
        return Sample(
            "describe",
            image=scene.image,
            class_names=names,
            answer=format_class_list(names),
            masks=np.zeros((0, *self.size), bool),
            labels=np.zeros(0, np.int64),
            instance_ids=np.zeros(0, np.int64),
        )

    # ------------------------------------------------------------------ language prompts
    def _referring(self, rng) -> Sample | None:
        scene = self.scene(rng)
        # the extra draws happen only when the rate is set, so the default splits keep their samples
        if self.colour_contrast_rate and rng.random() < self.colour_contrast_rate:
            contrast = colour_contrast(scene, rng, self.pairs)
            if contrast is not None:
                query, absent = contrast
                return self._referring_sample(scene, query, absent)
        roll = rng.random()
        if roll < NO_TARGET_RATE:
            # the extra draw happens only when the rate is set, so the default splits keep their samples
            if self.out_of_world_rate and rng.random() < self.out_of_world_rate / NO_TARGET_RATE:
                expression = out_of_world_expression(rng)
                return self._no_target_sample(scene, expression, stated_colour(expression), OUT_OF_WORLD)
            query = no_target(scene, rng, self.pairs)
            return self._no_target_sample(scene, query.text(), query.colour, query.category, query.plural)
        if roll < 0.3:
            query = multi_target(scene, rng)
            if query is None:
                return None
        else:
            targets = [
                o for o in scene.objects if self.split != "compositional" or (o.category, o.colour) in HELD_OUT_PAIRS
            ]
            if not targets:
                return None
            query = describe_uniquely(targets[int(rng.integers(len(targets)))], scene, rng)
            if query is None:
                return None
        return self._referring_sample(scene, query)

    def _no_target_sample(
        self,
        scene: Scene,
        expression: str,
        colour: str | None = None,
        category: str | None = None,
        several: bool | None = None,
    ) -> Sample:
        return Sample(
            "referring",
            image=scene.image,
            expression=expression,
            no_target=True,
            stated_colour=colour,
            stated_category=category,
            names_several=several,
            masks=np.zeros((0, *self.size), bool),
            labels=np.zeros(0, np.int64),
            instance_ids=np.zeros(0, np.int64),
        )

    def _referring_sample(self, scene: Scene, query, no_target: bool = False) -> Sample | None:
        """The referring sample of ``query`` on ``scene``; ``no_target``: it names nothing here."""
        found = evaluate(query, scene)
        if no_target:
            return (
                None
                if found
                else self._no_target_sample(scene, query.text(), query.colour, query.category, query.plural)
            )
        if not found:
            return None
        return Sample(
            "referring",
            image=scene.image,
            expression=query.text(),
            stated_colour=query.colour,
            stated_category=query.category,
            names_several=query.plural,
            masks=union(found, self.size)[None],
            labels=np.zeros(1, np.int64),
            instance_ids=np.array([found[0].instance_id]),
        )

    def _reasoning(self, rng) -> Sample | None:
        scene = self.scene(rng)
        question = reasoning_question(scene, rng)
        if question is None:
            return None
        found = question.found
        return Sample(
            "reasoning",
            image=scene.image,
            expression=question.question,
            answer=question.answer,
            masks=union(found, self.size)[None],
            labels=np.zeros(1, np.int64),
            instance_ids=np.array([found[0].instance_id]),
            colour_anchor_category=question.colour_anchor.category if question.colour_anchor else None,
            ranked_category=found[0].category if question.ranks_categories else None,
            present_categories=sorted({o.category for o in scene.objects}),
        )

    # ------------------------------------------------------------------ visual prompts
    def _interactive(self, rng) -> Sample | None:
        scene = self.scene(rng)
        objects = [o for o in scene.objects if o.area >= 20]
        if not objects:
            return None
        picked = rng.choice(len(objects), size=int(rng.integers(1, min(3, len(objects)) + 1)), replace=False)
        chosen = [objects[i] for i in picked]
        return Sample(
            "interactive",
            image=scene.image,
            regions=[sample_region(o.mask, rng) for o in chosen],
            masks=np.stack([o.mask for o in chosen]),
            labels=np.arange(len(chosen)),
            instance_ids=np.array([o.instance_id for o in chosen]),
        )

    # ------------------------------------------------------------------ video
    def _clip(self, rng):
        length = int(rng.integers(self.clip_length[0], self.clip_length[1] + 1))
        return generate_clip(
            rng, self.size, length, pairs=self.pairs if self.split != "compositional" else list(HELD_OUT_PAIRS)
        )

    def _vos(self, rng) -> Sample | None:
        clip = self._clip(rng)
        first = [i for i, m in enumerate(clip.masks[0]) if m.sum() >= 20]
        if not first:
            return None
        regions = [sample_region(clip.masks[0][i], rng) for i in first]
        return Sample(
            "vos",
            frames=clip.frames,
            regions=regions,
            labels=np.arange(len(first)),
            instance_ids=clip.instance_ids[first],
            frame_masks=[m[first] for m in clip.masks],
        )

    def _referring_video(self, rng) -> Sample | None:
        clip = self._clip(rng)
        scene = as_scene(clip, 0)
        if not scene.objects:
            return None
        target = scene.objects[int(rng.integers(len(scene.objects)))]
        query = describe_uniquely(target, scene, rng)
        if query is None or query.position or query.relation:  # positions change over a clip: attributes only
            return None
        row = [o.instance_id for o in clip.objects].index(target.instance_id)
        return Sample(
            "referring_video",
            frames=clip.frames,
            expression=query.text(),
            stated_colour=query.colour,
            stated_category=query.category,
            labels=np.zeros(1, np.int64),
            instance_ids=np.array([target.instance_id]),
            frame_masks=[m[row : row + 1] for m in clip.masks],
        )

    def _vis(self, rng) -> Sample | None:
        clip = self._clip(rng)
        present = sorted({o.category for o in clip.objects})
        absent = [c for c in CATEGORIES if c not in present]
        names = present + list(rng.choice(absent, size=min(3, len(absent)), replace=False))
        rng.shuffle(names)
        names = [str(n) for n in names]
        return Sample(
            "vis",
            frames=clip.frames,
            class_names=names,
            labels=np.array([names.index(o.category) for o in clip.objects]),
            instance_ids=clip.instance_ids,
            frame_masks=clip.masks,
        )
