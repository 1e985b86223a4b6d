"""The model's answer with the phrase that names each target coloured like its mask (as Sa2VA shows answers)."""

from __future__ import annotations

import re

from hyperseg_lite.pipeline import SegmentationResult

from .common import clean_text, hex_colour

# where the phrase naming the target ends: "The blue ring, because it is round" -> "The blue ring"
PHRASE_END = re.compile(r"[,.;:!?]|\b(?:because|since|as|is|are|which|that|could|can|has|have)\b", re.IGNORECASE)
MAX_PHRASE_WORDS = 6
MAX_TARGETS = 20
# fixed at construction (a colour map sent with each answer would turn the API's value into an update): target
# i is drawn in the overlay's colour of id i
TARGET_COLOURS = {f"target {i}": hex_colour(i) for i in range(1, MAX_TARGETS + 1)}
STOPWORDS = {
    "the",
    "a",
    "an",
    "is",
    "it",
    "of",
    "and",
    "because",
    "that",
    "this",
    "which",
    "what",
    "to",
    "in",
    "on",
    "segment",
    "find",
    "show",
    "me",
    "thing",
    "object",
    "one",
    "could",
    "can",
    "be",
    "with",
    "has",
    "have",
}


def target_phrases(answer: str, count: int) -> list[tuple[int, int]]:
    """Character spans of the phrases naming ``count`` targets: the answer's leading phrase, split on "and"."""
    match = PHRASE_END.search(answer)
    lead = answer[: match.start() if match else len(answer)]
    if not lead.strip() or len(lead.split()) > MAX_PHRASE_WORDS * count:
        return []
    joins = [p for m in re.finditer(r"\s+and\s+", lead) for p in m.span()] if count > 1 else []
    cuts = [0, *joins, len(lead)]
    spans = []
    for start, stop in zip(cuts[::2], cuts[1::2]):
        text = lead[start:stop]
        if text.strip():
            spans.append((start + len(text) - len(text.lstrip()), start + len(text.rstrip())))
    return spans[:count]


def keyword_spans(answer: str, question: str) -> list[tuple[int, int]]:
    """Fallback: words of the answer that the question also uses (the object's name, usually)."""
    keywords = {w for w in re.findall(r"[a-z]+", question.lower()) if w not in STOPWORDS and len(w) > 2}
    return [m.span() for m in re.finditer(r"[A-Za-z]+", answer) if m.group().lower() in keywords]


def target_key(result: SegmentationResult, i: int) -> str:
    """Segment i's legend entry, "target <id>" (its colour in ``TARGET_COLOURS`` is the overlay's)."""
    return f"target {int(result.ids[i])}"


def highlighted_answer(answer: str | None, question: str, result: SegmentationResult) -> list[tuple[str, str | None]]:
    """The HighlightedText value: the target phrase(s) labelled "target <id>", coloured like the mask."""
    answer = clean_text(answer or "")
    if not answer:
        return []
    if result.no_match:
        return [(answer, None)]
    keys = [target_key(result, i) for i in range(len(result))]
    spans = target_phrases(answer, len(keys))
    labels = keys[: len(spans)]
    if not spans:
        spans = keyword_spans(answer, question)
        labels = [keys[0]] * len(spans)
    pieces, cursor = [], 0
    for (start, stop), key in sorted(zip(spans, labels)):
        if start > cursor:
            pieces.append((answer[cursor:start], None))
        pieces.append((answer[start:stop], key))
        cursor = stop
    if cursor < len(answer):
        pieces.append((answer[cursor:], None))
    return pieces
