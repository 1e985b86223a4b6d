"""Referring expressions as small structured queries: rendered to text, and evaluated on the scene by the
same code, so every expression is true of the scene by construction (``evaluate`` is the checker)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .scene import Scene, SceneObject
from .vocabulary import CATEGORIES, COLOUR_NAMES

POSITIONS = ("left", "right", "top", "bottom")
RELATIONS = {"left of": (0, -1), "right of": (0, 1), "above": (1, -1), "below": (1, 1)}


@dataclass(frozen=True)
class Query:
    """Objects with these attributes; ``position`` picks the extreme one; ``relation`` relates to an anchor."""

    category: str | None = None
    colour: str | None = None
    size: str | None = None
    position: str | None = None  # "left": the leftmost of the matches
    relation: str | None = None
    anchor: Query | None = None
    plural: bool = False  # "all red objects", "the triangles"

    def text(self) -> str:
        noun = self.category or "object"
        if self.plural:
            noun = {"cross": "crosses"}.get(noun, noun + "s")
            words = ["all"] + [w for w in (self.size, self.colour) if w] + [noun]
            return " ".join(words)
        words = ["the"] + [w for w in (self.size, self.colour) if w] + [noun]
        if self.position:
            words.append(
                {"left": "on the left", "right": "on the right", "top": "at the top", "bottom": "at the bottom"}[
                    self.position
                ]
            )
        if self.relation and self.anchor:
            words += [self.relation, self.anchor.text()]
        return " ".join(words)


def _attribute_matches(query: Query, objects: list[SceneObject]) -> list[SceneObject]:
    return [
        o
        for o in objects
        if (query.category in (None, o.category))
        and (query.colour in (None, o.colour))
        and (query.size in (None, o.size))
    ]


def evaluate(query: Query, scene: Scene) -> list[SceneObject]:
    """The objects a query refers to (the checker used by the generator and the tests)."""
    found = _attribute_matches(query, scene.objects)
    if query.relation and query.anchor:
        anchors = evaluate(query.anchor, scene)
        if len(anchors) != 1:
            return []
        axis, sign = RELATIONS[query.relation]
        a = anchors[0].centroid[axis]
        found = [o for o in found if o is not anchors[0] and sign * (o.centroid[axis] - a) > 0.1 * scene.size[0]]
    if query.position and found:
        axis = 0 if query.position in ("left", "right") else 1
        key = [o.centroid[axis] for o in found]
        pick = int(np.argmin(key) if query.position in ("left", "top") else np.argmax(key))
        ordered = sorted(key)
        margin = 0.08 * scene.size[0]
        # the extreme object must be clearly extreme, or the expression is ambiguous
        if (
            len(found) > 1
            and abs(
                ordered[0 if query.position in ("left", "top") else -1]
                - ordered[1 if query.position in ("left", "top") else -2]
            )
            < margin
        ):
            return found  # ambiguous: several candidates (generators reject this)
        found = [found[pick]]
    return found


def stated_colour(text: str) -> str | None:
    """The first colour name among the words of a free-text expression ("the red snow" -> "red"), for
    expressions built without a :class:`Query` (the out-of-world ones); None when it names no colour."""
    return next((word for word in text.lower().split() if word in COLOUR_NAMES), None)


def union(objects: list[SceneObject], size: tuple[int, int]) -> np.ndarray:
    out = np.zeros(size, dtype=bool)
    for o in objects:
        out |= o.mask
    return out


def describe_uniquely(target: SceneObject, scene: Scene, rng: np.random.Generator) -> Query | None:
    """A single-target expression for ``target``, choosing among the attribute / position / relation forms."""
    candidates = [
        Query(category=target.category),
        Query(category=target.category, colour=target.colour),
        Query(category=target.category, size=target.size),
        Query(category=target.category, colour=target.colour, size=target.size),
        Query(colour=target.colour),
    ]
    candidates += [Query(category=target.category, position=p) for p in POSITIONS]
    candidates += [Query(category=target.category, colour=target.colour, position=p) for p in POSITIONS]
    others = [o for o in scene.objects if o is not target]
    if others:
        anchor_obj = others[int(rng.integers(len(others)))]
        anchor = describe_anchor(anchor_obj, scene)
        if anchor is not None:
            for relation in RELATIONS:
                candidates.append(
                    Query(category=target.category, colour=target.colour, relation=relation, anchor=anchor)
                )
                candidates.append(
                    Query(
                        category=target.category,
                        size=target.size,
                        colour=target.colour,
                        relation=relation,
                        anchor=anchor,
                    )
                )
    good = [q for q in candidates if evaluate(q, scene) == [target]]
    if not good:
        return None
    relational = [q for q in good if q.relation]
    if relational and rng.random() < 0.3:
        return relational[int(rng.integers(len(relational)))]
    return good[int(rng.integers(len(good)))]


def describe_anchor(obj: SceneObject, scene: Scene) -> Query | None:
    for query in (
        Query(category=obj.category),
        Query(category=obj.category, colour=obj.colour),
        Query(category=obj.category, colour=obj.colour, size=obj.size),
    ):
        if evaluate(query, scene) == [obj]:
            return query
    return None


def multi_target(scene: Scene, rng: np.random.Generator) -> Query | None:
    options = [Query(colour=c, plural=True) for c in sorted({o.colour for o in scene.objects})]
    options += [Query(category=c, plural=True) for c in sorted({o.category for o in scene.objects})]
    options = [q for q in options if len(evaluate(q, scene)) >= 2]
    return options[int(rng.integers(len(options)))] if options else None


def no_target(scene: Scene, rng: np.random.Generator, pairs: list[tuple[str, str]] | None = None) -> Query:
    """A plausible expression that matches nothing here (a category-colour pair absent from the scene)."""
    present = {(o.category, o.colour) for o in scene.objects}
    pool = [p for p in (pairs or [(c, k) for c in CATEGORIES for k in COLOUR_NAMES]) if p not in present]
    category, colour = pool[int(rng.integers(len(pool)))]
    return Query(category=category, colour=colour)


def colour_contrast(scene: Scene, rng: np.random.Generator, pairs: list[tuple[str, str]]) -> tuple[Query, bool] | None:
    """An expression that only the colour decides, and whether it names nothing here: a target that shares its
    category with an object of another colour, named with its colour; or (at the no-target share) a category
    that is here, in a colour it does not have here. None when the scene has neither.

    Why: most expressions of :func:`describe_uniquely` are decided by the shape alone (a category is often unique
    in a scene), so a model whose features hold shapes learns to ignore colour words (docs/research/embedded-v2.md)."""
    present = {(o.category, o.colour) for o in scene.objects}
    if rng.random() < 0.15:  # as often as the world's own no-target share
        categories = {o.category for o in scene.objects}
        pool = [(c, k) for c, k in pairs if c in categories and (c, k) not in present]
        if not pool:
            return None
        category, colour = pool[int(rng.integers(len(pool)))]
        return Query(category=category, colour=colour), True
    contested = [
        o for o in scene.objects if any(p.category == o.category and p.colour != o.colour for p in scene.objects)
    ]
    if not contested:
        return None
    target = contested[int(rng.integers(len(contested)))]
    candidates = [Query(category=target.category, colour=target.colour), Query(colour=target.colour)]
    candidates += [Query(category=target.category, colour=target.colour, position=p) for p in POSITIONS]
    decided = [q for q in candidates if evaluate(q, scene) == [target]]
    good = [q for q in decided if evaluate(replace(q, colour=None), scene) != [target]]  # the colour decides
    return (good[int(rng.integers(len(good)))], False) if good else None
