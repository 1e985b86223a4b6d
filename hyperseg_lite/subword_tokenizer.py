"""A subword tokenizer for the small presets: byte-level BPE trained on the world's language and common English.

    python -m hyperseg_lite.subword_tokenizer --output assets/tokenizer-lite2 --vocab-size 2048

The byte-level tokenizer of ``lite`` spends one token per byte, so a 4-layer LLM spends its depth on spelling
and generates non-words. A BPE vocabulary learnt on the text the model reads and writes (prompt templates,
referring expressions, reasoning questions and explanations, class names) makes each world word one or two
tokens; common English words (``wordfreq``'s list, bundled with that package) are learnt too so that text
from outside the world splits into words rather than bytes. All 256 byte symbols stay in the vocabulary
(GPT-2's byte-level scheme), so any typed text in any script still encodes: that is the byte fallback.

Next to ``tokenizer.json`` the command writes ``words.txt``, the training vocabulary that the real-word gate
checks generated answers against (:func:`real_word_fraction`).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from .constants import PLACEHOLDER_IDS, SEG_VOCAB_TOKEN
from .tokenization import END_OF_TEXT, add_seg_token

WORDS_FILE = "words.txt"
_WORD = re.compile(r"[A-Za-z]+(?:'[a-z]+)?")


def words_of(text: str) -> list[str]:
    """The words of a text as the real-word gate counts them: letter runs, lower-cased."""
    return [w.lower() for w in _WORD.findall(text)]


def real_word_fraction(texts: Iterable[str], vocabulary: set[str]) -> float:
    """Share of the words in ``texts`` that are in ``vocabulary`` (1.0 when there are no words)."""
    words = [w for text in texts for w in words_of(text)]
    return sum(w in vocabulary for w in words) / len(words) if words else 1.0


def tokenizer_words(tokenizer) -> set[str] | None:
    """The real-word gate's vocabulary saved beside a subword tokenizer (``words.txt``); None for a tokenizer
    without one (the byte tokenizer, the 3B release's)."""
    path = Path(str(getattr(tokenizer, "name_or_path", "") or "")) / WORDS_FILE
    return set(path.read_text().split()) if path.is_file() else None


def world_texts(samples_per_task: int = 1000, seed: int = 0) -> Iterator[str]:
    """Every kind of text the world puts in a prompt or an answer, rendered as the model sees it."""
    from . import prompts as P
    from .data.vocabulary import ALL_CLASS_NAMES, COLOUR_NAMES, SIZE_NAMES
    from .data.world import World

    placeholders = re.compile("|".join(re.escape(p) for p in [*PLACEHOLDER_IDS, "<gt>"]))
    for wording in ("official", "paper"):
        for style in ("phi_v0", "compact", "llava_phi"):
            conversations = [
                P.referring_prompt(t, wording, explanation="") for t in ("referring", "reasoning", "reasoning_explain")
            ]
            conversations += [P.class_prompt(2, t, wording) for t in ("panoptic", "semantic", "instance")]
            conversations += [
                P.region_prompt(2, wording),
                P.video_reasoning_prompt(wording),
                P.describe_prompt(wording, P.format_class_list(ALL_CLASS_NAMES)),
            ]
            for conversation in conversations:
                text = P.Conversation(conversation.user, conversation.answer, style).render()
                yield placeholders.sub(" ", text)
    yield " ".join(ALL_CLASS_NAMES + COLOUR_NAMES + SIZE_NAMES)
    world = World("train", seed)
    for task in ("referring", "reasoning", "referring_video"):
        for index in range(samples_per_task):
            sample = world.sample(task, index)
            yield sample.expression
            if sample.answer:
                yield sample.answer


def english_words(count: int = 5000) -> list[str]:
    """The ``count`` most frequent English words (wordfreq; its lists ship inside the package, no download)."""
    from wordfreq import top_n_list

    return [w for w in top_n_list("en", count) if w.isalpha()]


def train_subword_tokenizer(texts: Iterable[str], vocab_size: int = 2048) -> PreTrainedTokenizerFast:
    """Byte-level BPE with ``<|endoftext|>`` (eos, pad) and ``[SEG]``; ``vocab_size`` counts every entry."""
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[END_OF_TEXT, SEG_VOCAB_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token=END_OF_TEXT, pad_token=END_OF_TEXT, model_max_length=4096
    )
    add_seg_token(tokenizer)
    return tokenizer


def build(
    output: Path, vocab_size: int = 2048, samples_per_task: int = 1000, english: int = 5000
) -> PreTrainedTokenizerFast:
    """Train on the world's texts (each as often as it occurs) plus each English word once; save both files."""
    texts = list(world_texts(samples_per_task))
    words = english_words(english) if english else []
    tokenizer = train_subword_tokenizer(texts + [" " + w for w in words], vocab_size)
    output.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(output)
    vocabulary = sorted({w for text in texts for w in words_of(text)} | set(words))
    (output / WORDS_FILE).write_text("\n".join(vocabulary) + "\n")
    return tokenizer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--vocab-size", type=int, default=2048)
    parser.add_argument("--samples-per-task", type=int, default=1000)
    parser.add_argument("--english-words", type=int, default=5000)
    args = parser.parse_args(argv)
    tokenizer = build(args.output, args.vocab_size, args.samples_per_task, args.english_words)
    probe = "the small red star left of the blue ring"
    print(
        f"{len(tokenizer)} entries; {probe!r} -> {len(tokenizer(probe)['input_ids'])} tokens "
        f"({len(probe.encode())} bytes); saved to {args.output}"
    )


if __name__ == "__main__":
    main()
