"""``load_model``: one call from a name, folder or hub id to a ready model, at a chosen precision.

Precisions (a short explicit table, as LISA's ``chat.py`` has):

=========  ==========================================================================================
``fp32``   everything float32 (the default on CPU)
``bf16``   everything bfloat16 (large GPUs)
``fp16``   everything float16
``8bit``   LLM linear layers int8 (bitsandbytes), everything else fp32 / bf16
``4bit``   LLM linear layers NF4 with double quantization (bitsandbytes), everything else unquantized
=========  ==========================================================================================

Quantization touches the LLM only: the vision towers, perceiver, projectors and mask decoder are kept
out (``llm_int8_skip_modules``) because they are small and precision-sensitive. A quantized model is
placed by ``device_map`` at load time and never moved with ``.to()`` afterwards (the official code's
``load_4bit`` path breaks exactly there).

Sources: ``None`` -> the embedded checkpoint shipped in ``assets/``; a local folder; or a Hugging Face
Hub id (downloaded once into the hub cache, ``HF_HUB_OFFLINE=1`` uses the cache only). Folders in the
official HyperSeg layout are detected and converted on the fly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

# where checkpoints come from and how ours are read live in checkpoints.py, which convert.py reads too (one
# direction: loading -> convert -> checkpoints); these names stay importable from here
from .checkpoints import (  # noqa: F401
    EMBEDDED_CHECKPOINT,
    NOT_QUANTIZED,
    PRECISIONS,
    CheckpointNotFound,
    load_ours,
    quantization_config,
    resolve_checkpoint,
)
from .configuration_hyperseg import HyperSegConfig
from .modeling.modeling_hyperseg import HyperSegForSegmentation
from .processing_hyperseg import HyperSegProcessor


@dataclass
class LoadedModel:
    """A model with everything needed to use it, and a description for UIs and logs."""

    model: HyperSegForSegmentation
    tokenizer: object
    processor: HyperSegProcessor
    name: str
    precision: str
    source: str

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def describe(self) -> str:
        return (
            f"{self.name} | {self.num_parameters / 1e6:.1f} M parameters | {self.precision} | {self.device} | "
            f"preset {self.model.config.preset}"
        )


def load_model(
    name_or_path: str | os.PathLike | None = None, precision: str | None = None, device_map: str | dict | None = None
) -> LoadedModel:
    """Load a HyperSeg-lite checkpoint (ours or the official layout) ready for inference.

    ``precision`` defaults to ``bf16`` on a GPU and ``fp32`` on CPU; ``device_map`` to ``"auto"`` on a GPU.
    """
    cuda = torch.cuda.is_available()
    precision = precision or ("bf16" if cuda else "fp32")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if device_map is None:
        device_map = "auto" if cuda else "cpu"
    folder = resolve_checkpoint(name_or_path)

    from .convert import is_official_checkpoint, load_official_checkpoint  # local: keeps import light

    if is_official_checkpoint(folder):
        model, tokenizer = load_official_checkpoint(folder, precision=precision, device_map=device_map)
    else:
        model, tokenizer = load_ours(folder, precision, device_map)
    model.eval()
    name = str(name_or_path) if name_or_path is not None else "hyperseg-lite (embedded)"
    return LoadedModel(model, tokenizer, HyperSegProcessor(tokenizer, model.config), name, precision, str(folder))


def build_random_model(preset: str = "tiny", seed: int = 0, tokenizer=None, **overrides) -> LoadedModel:
    """A randomly initialised model of a preset (tests, demos, the start of training).

    ``tokenizer``: a tokenizer or its folder (``lite2`` trains with the subword one,
    :mod:`hyperseg_lite.subword_tokenizer`); by default the byte tokenizer."""
    from pathlib import Path

    from transformers import AutoTokenizer

    from .tokenization import add_seg_token, build_byte_tokenizer

    torch.manual_seed(seed)
    if tokenizer is None:
        tokenizer = build_byte_tokenizer()
    elif isinstance(tokenizer, (str, Path)):
        tokenizer = AutoTokenizer.from_pretrained(tokenizer)
        add_seg_token(tokenizer)
    config = HyperSegConfig.from_preset(preset, seg_token_id=tokenizer.convert_tokens_to_ids("[SEG]"), **overrides)
    if len(tokenizer) > config.text_config.vocab_size:
        raise ValueError(
            f"the tokenizer has {len(tokenizer)} entries but preset {preset!r} embeds only "
            f"{config.text_config.vocab_size}: pick a preset whose vocabulary fits it"
        )
    config.text_config.pad_token_id = tokenizer.pad_token_id
    config.text_config.eos_token_id = tokenizer.eos_token_id
    model = HyperSegForSegmentation(config).eval()
    return LoadedModel(
        model, tokenizer, HyperSegProcessor(tokenizer, config), f"random {preset}", "fp32", f"random init, seed {seed}"
    )
