"""Expressions from outside the world, which must find nothing: other nouns, other languages, nonsense.

The world's own no-target samples name an absent category-colour pair, so a model trained on them alone learns
that any unknown phrase still means *something* here, and it answered "the purple elephant on the moon" with a
mask at 0.93. Training draws from :func:`out_of_world_expression`; evaluation uses the fixed
:data:`HELD_OUT_EXPRESSIONS`, whose nouns, phrases and scripts training never draws.
"""

from __future__ import annotations

import numpy as np

from .vocabulary import COLOUR_NAMES, SIZE_NAMES

# what an out-of-world expression states as its target's category (Sample.stated_category): a thing no mask has
OUT_OF_WORLD = "outside the world"

TRAIN_NOUNS = (
    "cat",
    "dog",
    "horse",
    "bird",
    "fish",
    "cow",
    "sheep",
    "lion",
    "tiger",
    "bear",
    "monkey",
    "rabbit",
    "mouse",
    "car",
    "bus",
    "truck",
    "bicycle",
    "train",
    "boat",
    "plane",
    "house",
    "tree",
    "flower",
    "chair",
    "table",
    "bed",
    "sofa",
    "lamp",
    "door",
    "window",
    "book",
    "phone",
    "computer",
    "cup",
    "bottle",
    "plate",
    "spoon",
    "knife",
    "apple",
    "banana",
    "orange fruit",
    "pizza",
    "cake",
    "bread",
    "shoe",
    "hat",
    "shirt",
    "bag",
    "umbrella",
    "clock",
    "guitar",
    "piano",
    "ball player",
    "person",
    "man",
    "woman",
    "child",
    "baby",
    "face",
    "hand",
    "road",
    "bridge",
    "mountain",
    "river",
    "cloud",
    "tower",
    "church",
    "kitchen",
    "garden",
    "street",
    "city",
    "forest",
    "snow",
    "television",
    "keyboard",
    "camera",
    "pencil",
    "key",
    "toy",
    "robot",
    "rocket",
    "planet",
    "sun",
    "window frame",
)
TRAIN_ADJECTIVES = (
    "old",
    "new",
    "tall",
    "happy",
    "sleeping",
    "wooden",
    "shiny",
    "broken",
    "tiny",
    "huge",
    "running",
    "flying",
    "dirty",
    "famous",
    "hungry",
    "young",
)
TRAIN_RELATIONS = ("on", "under", "next to", "in front of", "behind", "inside", "near", "with")
TRAIN_FOREIGN = (
    "der Hund im Garten",
    "die alte Katze",
    "ein rotes Auto",
    "das Haus am See",
    "le chat noir",
    "la maison bleue",
    "une voiture rapide",
    "el perro grande",
    "la casa roja",
    "un gato dormido",
    "il cane bianco",
    "la macchina",
    "de grote hond",
    "собака в парке",
    "красная машина",
    "犬と猫",
    "赤い車",
    "一只小狗",
    "红色的汽车",
    "큰 고양이",
    "o cachorro preto",
    "kedi ve köpek",
    "the γάτα",
    "Hund",
    "chien",
    "perro",
    "猫",
    "машина",
)
TRAIN_EMOJI = ("🐶", "🐱", "🚗", "🏠", "🌳", "🍕", "⚽", "🎸", "🚀", "🌞", "❤️", "👍", "😀", "🎉")

# Held out from training: none of these nouns, phrases or emoji is drawn by out_of_world_expression().
HELD_OUT_EXPRESSIONS = (
    "the purple elephant on the moon",
    "a giraffe eating leaves",
    "the zebra crossing the highway",
    "a penguin",
    "the kangaroo",
    "two dolphins jumping",
    "the owl in the oak",
    "a squirrel",
    "the crocodile by the lake",
    "a red fire engine",
    "the yellow taxi",
    "the blue motorcycle",
    "a green tractor",
    "the submarine",
    "the helicopter above the harbour",
    "a sailing ship",
    "the lighthouse",
    "the castle on the hill",
    "a windmill",
    "the skyscraper",
    "the wine glass",
    "a teapot",
    "the frying pan",
    "a fork",
    "the refrigerator",
    "the microwave oven",
    "a toaster",
    "the washing machine",
    "a pillow",
    "the blanket on the hammock",
    "the curtains",
    "a mirror",
    "the bathtub",
    "a toothbrush",
    "the scissors",
    "a hammer",
    "the ladder",
    "a shovel",
    "the wheelbarrow",
    "a tent",
    "the campfire",
    "a backpack",
    "the sunglasses",
    "a necklace",
    "the wedding dress",
    "a tie",
    "the jacket",
    "the boots",
    "a sock",
    "the glove",
    "the violin",
    "a trumpet",
    "the drum kit",
    "a microphone",
    "the painting in the gallery",
    "a sculpture",
    "the candle",
    "a balloon",
    "the kite soaring high",
    "a snowman",
    "the rainbow",
    "a volcano",
    "the desert",
    "a waterfall",
    "the island",
    "a cactus",
    "the mushroom",
    "a strawberry",
    "the watermelon",
    "a carrot",
    "the sandwich",
    "a hamburger",
    "the ice cream cone",
    "a cookie",
    "the mug of coffee",
    "the newspaper",
    "a laptop on the desk",
    "the remote control",
    "a headphone",
    "the traffic light",
    "a parking meter",
    "the fire hydrant",
    "a stop sign",
    "the bench in the park",
    "a fountain",
    "the dragon",
    "a unicorn",
    "the ghost",
    "a spaceship landing",
    "the astronaut",
    "der lila Elefant auf dem Mond",
    "die Giraffe",
    "ein blaues Fahrrad im Regen",
    "le pingouin sur la glace",
    "la girafe",
    "el elefante morado",
    "la jirafa alta",
    "il pinguino",
    "紫色的大象",
    "月亮上的大象",
    "长颈鹿",
    "象が月にいる",
    "キリン",
    "фиолетовый слон",
    "жираф",
    "보라색 코끼리",
    "o elefante roxo",
    "mor fil",
    "🐘",
    "🦒🦒",
    "🐧 on ice",
    "🌈",
    "🍔🍟",
    "🦄",
    "xqzvbn",
    "blorf the wiggle",
    "asdf jkl",
    "zzyzx qwop",
    "the frumious bandersnatch",
    "glorp",
    "lorem ipsum dolor sit amet",
    "1234 5678",
    "???",
    "the the the",
)

_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _nonsense(rng: np.random.Generator) -> str:
    words = ["".join(rng.choice(list(_LETTERS), size=int(rng.integers(3, 9)))) for _ in range(int(rng.integers(1, 4)))]
    return " ".join(words)


def _pick(rng: np.random.Generator, options) -> str:
    return options[int(rng.integers(len(options)))]


def out_of_world_expression(rng: np.random.Generator) -> str:
    """One training expression that names nothing in any world scene."""
    form = rng.random()
    if form < 0.45:  # an English noun phrase, often dressed in world words ("the small red cat")
        noun = _pick(rng, TRAIN_NOUNS)
        words = ["the"]
        if rng.random() < 0.4:
            words.append(_pick(rng, SIZE_NAMES))
        if rng.random() < 0.5:
            words.append(_pick(rng, COLOUR_NAMES))
        elif rng.random() < 0.5:
            words.append(_pick(rng, TRAIN_ADJECTIVES))
        words.append(noun)
        if rng.random() < 0.3:
            words += [_pick(rng, TRAIN_RELATIONS), "the", _pick(rng, TRAIN_NOUNS)]
        return " ".join(words)
    if form < 0.7:
        return _pick(rng, TRAIN_FOREIGN)
    if form < 0.85:
        return _nonsense(rng)
    return "".join(_pick(rng, TRAIN_EMOJI) for _ in range(int(rng.integers(1, 3))))
