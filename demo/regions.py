"""Visual prompts typed as JSON through the API -> ``Region``s, with a sentence for every malformed value.

[{"points": [[x, y], ...], "labels": [1, 0, ...]}, {"box": [x0, y0, x1, y1]}, {"scribble": [[x, y], ...]}]
"""

from __future__ import annotations

import json
import math

from hyperseg_lite.pipeline import Region

MAX_OBJECTS = 20
MAX_POINTS = 1_000
KINDS = ("points", "box", "scribble")
EXAMPLE = '[{"points": [[120, 80], [30, 40]], "labels": [1, 0]}, {"box": [10, 10, 200, 150]}]'


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {json.dumps(value)[:40]}")
    return float(value)


def _pairs(value, what: str) -> list[list[float]]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"{what} must be a non-empty list of [x, y] pairs, e.g. [[120, 80]]")
    if len(value) > MAX_POINTS:
        raise ValueError(f"{what} has {len(value)} points; at most {MAX_POINTS}")
    pairs = []
    for item in value:
        if not isinstance(item, list) or len(item) != 2:
            raise ValueError(f"each of {what} must be an [x, y] pair, got {json.dumps(item)[:40]}")
        pairs.append([_number(item[0], f"{what} x"), _number(item[1], f"{what} y")])
    return pairs


def parse_object(spec, number: int) -> Region:
    """One object of the JSON list -> a Region (validated against the image later by the pipeline)."""
    what = f"object {number}"
    if not isinstance(spec, dict):
        raise ValueError(f'{what} must be a JSON object such as {{"box": [x0, y0, x1, y1]}}')
    unknown = set(spec) - {*KINDS, "labels"}
    if unknown:
        raise ValueError(f"{what} has unknown keys {sorted(unknown)}; use points (+ labels), box or scribble")
    kinds = [k for k in KINDS if k in spec]
    if len(kinds) != 1:
        raise ValueError(f"{what} needs exactly one of points, box, scribble")
    if "labels" in spec and kinds != ["points"]:
        raise ValueError(f"{what}: labels go with points only")
    if kinds == ["box"]:
        box = spec["box"]
        if not isinstance(box, list) or len(box) != 4:
            raise ValueError(f"{what}: a box is four numbers [x0, y0, x1, y1]")
        return Region(box=[_number(v, f"{what} box") for v in box])
    if kinds == ["scribble"]:
        return Region(scribble=_pairs(spec["scribble"], f"{what} scribble"))
    points = _pairs(spec["points"], f"{what} points")
    labels = spec.get("labels", [1] * len(points))
    if not isinstance(labels, list) or len(labels) != len(points):
        raise ValueError(f"{what}: give one label per point (1 = include, 0 = exclude)")
    if any(label not in (0, 1) or isinstance(label, bool) for label in labels):
        raise ValueError(f"{what}: every label must be 1 (include) or 0 (exclude), got {json.dumps(labels)[:60]}")
    if 1 not in labels:
        raise ValueError(f"{what} has only exclude points: add at least one include point (label 1)")
    return Region(points=points, point_labels=[int(v) for v in labels])


def parse_regions(text: str) -> list[Region]:
    """The API's ``regions`` value -> Regions, or a ValueError that shows the expected form."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"give the regions as JSON, e.g. {EXAMPLE}")
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"regions must be JSON ({error.msg} at character {error.pos}), e.g. {EXAMPLE}") from None
    if isinstance(spec, dict):
        spec = [spec]
    if not isinstance(spec, list) or not spec:
        raise ValueError(f"regions must be a JSON list of objects, e.g. {EXAMPLE}")
    if len(spec) > MAX_OBJECTS:
        raise ValueError(f"at most {MAX_OBJECTS} objects at once, got {len(spec)}")
    return [parse_object(s, n) for n, s in enumerate(spec, 1)]
