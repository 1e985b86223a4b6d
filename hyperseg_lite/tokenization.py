"""Tokenizers: a byte-level one for the small presets, and the [SEG] token for any tokenizer.

The ``tiny``/``lite`` models are trained from scratch here, so they use a byte-level tokenizer
(256 byte symbols, no merges): any typed text, in any script, becomes valid ids, and nothing has to be
downloaded. The ``3b`` model uses Phi-2's tokenizer with ``[SEG]`` added (id 50295 in the release).
"""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

from .constants import SEG_VOCAB_TOKEN

END_OF_TEXT = "<|endoftext|>"


def build_byte_tokenizer() -> PreTrainedTokenizerFast:
    """256 byte symbols + ``<|endoftext|>`` (eos and pad) + ``[SEG]``: 258 ids, fits a 272-row embedding."""
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {symbol: index for index, symbol in enumerate(alphabet)}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token=END_OF_TEXT, pad_token=END_OF_TEXT, model_max_length=4096
    )
    add_seg_token(tokenizer)
    return tokenizer


def add_seg_token(tokenizer: PreTrainedTokenizerBase) -> int:
    """Add ``[SEG]`` as a special token (no-op if present) and return its id."""
    if SEG_VOCAB_TOKEN not in tokenizer.get_vocab():
        tokenizer.add_special_tokens({"additional_special_tokens": [SEG_VOCAB_TOKEN]})
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return int(tokenizer.convert_tokens_to_ids(SEG_VOCAB_TOKEN))
