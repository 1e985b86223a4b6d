"""The world's vocabulary and the facts reasoning questions rely on, in one table.

Categories have distinct geometry; colours are named; stuff classes are amorphous background regions.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Category:
    name: str
    corners: int  # number of convex/concave corners of the outline (0 = smooth)
    can_roll: bool  # round, no corners
    has_hole: bool
    symmetric: bool  # has a mirror axis


CATEGORY_TABLE = {
    c.name: c
    for c in [
        Category("circle", 0, True, False, True),
        Category("ring", 0, True, True, True),
        Category("square", 4, False, False, True),
        Category("triangle", 3, False, False, True),
        Category("diamond", 4, False, False, True),
        Category("pentagon", 5, False, False, True),
        Category("hexagon", 6, False, False, True),
        Category("star", 10, False, False, True),
        Category("cross", 12, False, False, True),
        Category("arrow", 7, False, False, True),
        Category("heart", 1, False, False, True),
        Category("crescent", 2, False, False, True),
    ]
}
CATEGORIES = tuple(CATEGORY_TABLE)

COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (240, 210, 40),
    "orange": (245, 140, 30),
    "purple": (140, 60, 190),
    "white": (240, 240, 240),
    "black": (25, 25, 25),
    "pink": (245, 130, 190),
    "brown": (130, 80, 40),
}
COLOUR_NAMES = tuple(COLOURS)

SIZES = {"small": (0.07, 0.10), "medium": (0.12, 0.16), "large": (0.19, 0.24)}  # radius as a fraction of the side
SIZE_NAMES = tuple(SIZES)

STUFF = {
    "sky": (120, 170, 235),
    "grass": (70, 150, 60),
    "water": (40, 100, 170),
    "sand": (215, 190, 130),
    "wall": (165, 160, 150),
}
STUFF_NAMES = tuple(STUFF)

ALL_CLASS_NAMES = CATEGORIES + STUFF_NAMES
