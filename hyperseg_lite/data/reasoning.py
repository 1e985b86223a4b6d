"""Reasoning questions: answering needs a fact about shapes or a step of inference, not a class name.

Each generator returns a :class:`Question` (question, answer text, target objects, and for a question that
relates its answer to another object, that anchor) or None when the scene does not support it; the answer names
the target and says why (used for the text loss and shown in the app).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from .scene import Scene, SceneObject


class Question(NamedTuple):
    question: str
    answer: str
    found: list[SceneObject]
    # the object the answer shares its colour with ("what shape is the same colour as the ring?"): what the
    # colour relation scores learn to find (modeling/relation_scores.py); None for the other questions
    colour_anchor: SceneObject | None = None
    # the answer is the object whose category ranks first by a fact the question asks about ("the most corners"):
    # what the category ranking scores learn (modeling/ranking_scores.py)
    ranks_categories: bool = False


def _name(obj: SceneObject) -> str:
    return f"the {obj.colour} {obj.category}"


def no_corners(scene: Scene, rng) -> Question | None:
    found = [o for o in scene.objects if o.facts.corners == 0]
    if len(found) != 1:
        return None
    return Question(
        "which object has no corners?", f"{_name(found[0]).capitalize()}, because its outline is smooth.", found
    )


def has_hole(scene: Scene, rng) -> Question | None:
    found = [o for o in scene.objects if o.facts.has_hole]
    if len(found) != 1:
        return None
    return Question(
        "segment the shape that has a hole in it",
        f"{_name(found[0]).capitalize()}, because a ring is hollow.",
        found,
    )


def largest_roller(scene: Scene, rng) -> Question | None:
    rollers = [o for o in scene.objects if o.facts.can_roll]
    if not rollers:
        return None
    radii = sorted((o.radius for o in rollers), reverse=True)
    if len(radii) > 1 and radii[0] < radii[1] * 1.2:
        return None
    best = max(rollers, key=lambda o: o.radius)
    return Question(
        "the largest thing that could roll",
        f"{_name(best).capitalize()}, because it is round and the biggest of the round shapes.",
        [best],
    )


def most_corners(scene: Scene, rng) -> Question | None:
    counts = sorted((o.facts.corners for o in scene.objects), reverse=True)
    if len(counts) < 2 or counts[0] == counts[1]:
        return None
    best = max(scene.objects, key=lambda o: o.facts.corners)
    return Question(
        "the object with the most corners",
        f"{_name(best).capitalize()}, because it has {best.facts.corners} corners, more than any other shape here.",
        [best],
        ranks_categories=True,
    )


def same_colour_as(scene: Scene, rng) -> Question | None:
    by_category = {}
    for o in scene.objects:
        by_category.setdefault(o.category, []).append(o)
    anchors = [objs[0] for objs in by_category.values() if len(objs) == 1]
    rng.shuffle(anchors)
    for anchor in anchors:
        mates = [o for o in scene.objects if o is not anchor and o.colour == anchor.colour]
        if mates:
            names = " and ".join(sorted({f"the {m.category}" for m in mates}))
            return Question(
                f"what shape is the same colour as the {anchor.category}?",
                f"{names.capitalize()}, because {'they are' if len(mates) > 1 else 'it is'} {anchor.colour} "
                f"like the {anchor.category}.",
                mates,
                colour_anchor=anchor,
            )
    return None


def pointy(scene: Scene, rng) -> Question | None:
    found = [o for o in scene.objects if o.category in ("star", "arrow")]
    if len(found) != 1:
        return None
    return Question(
        "which shape looks like it could point at something or shine in the night sky?",
        f"{_name(found[0]).capitalize()}, because {'stars shine' if found[0].category == 'star' else 'arrows point'}.",
        found,
    )


GENERATORS: tuple[Callable[[Scene, np.random.Generator], Question | None], ...] = (
    no_corners,
    has_hole,
    largest_roller,
    most_corners,
    same_colour_as,
    pointy,
)


def reasoning_question(scene: Scene, rng: np.random.Generator) -> Question | None:
    order = rng.permutation(len(GENERATORS))
    for index in order:
        question = GENERATORS[index](scene, rng)
        if question is not None:
            return question
    return None
