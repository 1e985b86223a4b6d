"""An explained answer opens with what its mask shows, and the LLM's continuation may not contradict that.

The attribute mask heads read the chosen mask's colour and category; the explanation starts with them ("The white
cross") and the LLM goes on from there. What the LLM adds is free text, but the world's explanations state only
facts of the named object (its colour, its corner count) and objects the question names ("like the star"), so any
other colour, category or corner count after the opening would contradict it: those words are kept out of the
continuation (``Opening.contradicting_words``, applied as the generator's banned words).
"""

from __future__ import annotations

from typing import NamedTuple

from ..data.vocabulary import CATEGORIES, CATEGORY_TABLE, COLOUR_NAMES, STUFF_NAMES
from . import postprocess as post
from .predictor import Candidates

# the longest reason the world's explanations give is 12 words ("because it has 10 corners, more than any other
# shape here"); a continuation much longer than that has lost its way
MAX_REASON_WORDS = 20
DANGLING_WORDS = {"the", "a", "an", "and", "like", "is", "are", "it", "they", "because", "than", "has", "have"}


def _words(text: str) -> list[str]:
    return text.lower().replace("?", " ").replace(",", " ").replace(".", " ").split()


def _plural(noun: str) -> str:
    return noun + ("es" if noun.endswith("s") else "s")


class Opening(NamedTuple):
    colour: str
    category: str

    @property
    def text(self) -> str:
        return f"The {self.colour} {self.category}"

    @property
    def prompt(self) -> str:
        """The words the LLM continues from: the opening and its comma, so that it goes on with the reason and
        does not add objects the mask does not show ("The green heart and the arrow")."""
        return self.text + ","

    def contradicting_words(self, question: str) -> list[str]:
        """Words the continuation of this opening must not use: the other colours; every category but those the
        question names (the object it relates the answer to, "like the star") or, where it names none, this one
        ("a ring is hollow"), with their plurals; the corner counts of other categories; "round", "hollow" or
        "smooth" where the category is not; the background's classes."""
        named = set(_words(question))
        colours = [c for c in COLOUR_NAMES if c != self.colour]
        allowed = {c for c in CATEGORIES if c in named or _plural(c) in named} or {self.category}
        categories = [c for c in CATEGORIES if c not in allowed]
        facts = CATEGORY_TABLE[self.category]
        corners = {str(c.corners) for c in CATEGORY_TABLE.values()} - {str(facts.corners)}
        properties = [w for w, holds in (("round", facts.can_roll), ("hollow", facts.has_hole)) if not holds]
        properties += ["smooth"] if facts.corners else []
        named_facts = colours + categories + [_plural(c) for c in categories] + sorted(corners, key=int) + properties
        return named_facts + list(STUFF_NAMES)

    def complete(self, explanation: str) -> str:
        """``explanation`` (this opening and the LLM's continuation) where the continuation reads as one sentence
        of reasons; otherwise the opening alone, as a sentence: a banned word can leave the LLM without a way to
        go on, and it then wanders (repeats words, or starts another answer)."""
        rest = explanation[len(self.text) :]
        words = _words(rest)
        one_sentence = "\n" not in rest and rest.rstrip().endswith(".") and rest.count(".") == 1
        stutters = any(words[i : i + 2] == words[i + 2 : i + 4] for i in range(len(words) - 3))  # "like the like the"
        wanders = stutters or any(words.count(w) > 2 for w in words) or len(words) > MAX_REASON_WORDS
        dangles = bool(words) and words[-1] in DANGLING_WORDS  # "because it is black like the."
        if explanation.startswith(self.text) and one_sentence and not wanders and not dangles and "because" in words:
            return explanation
        return self.text + "."


def answer_opening(candidates: Candidates) -> Opening | None:
    """What the chosen mask shows: the colour and category the attribute mask heads read from the best candidate's
    own mask, in the world's vocabulary. None for a model without both heads (the release), whose explanation then
    names its object freely."""
    colours, categories = candidates.attributes.get("colour"), candidates.attributes.get("category")
    if colours is None or categories is None:
        return None
    if colours.shape[-1] != len(COLOUR_NAMES) or categories.shape[-1] != len(CATEGORIES):
        return None  # heads trained on another vocabulary
    best, _ = post.referring_choice(candidates.mask_logits, candidates.scores[:, :1])
    return Opening(COLOUR_NAMES[int(colours[best].argmax())], CATEGORIES[int(categories[best].argmax())])
