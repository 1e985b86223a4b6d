"""Where a checkpoint comes from, and reading one in our layout: the part of loading that the converter needs too.

``resolve_checkpoint``: ``None`` -> the embedded checkpoint shipped in ``assets/``; a local folder; or a Hugging
Face Hub id (downloaded once into the hub cache, ``HF_HUB_OFFLINE=1`` uses the cache only). ``load_ours``: our
safetensors layout at any precision of :data:`PRECISIONS` (``loading.py`` documents them). ``loading.py``
(which converts official folders on the fly through ``convert.py``) and ``convert.py`` both import this module,
so neither imports the other back.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from transformers import AutoTokenizer, BitsAndBytesConfig

from .modeling.modeling_hyperseg import HyperSegForSegmentation
from .tokenization import add_seg_token

PRECISIONS = ("fp32", "bf16", "fp16", "8bit", "4bit")
EMBEDDED_CHECKPOINT = Path(__file__).resolve().parent.parent / "assets" / "hyperseg-lite"
NOT_QUANTIZED = [
    "global_vision",
    "pyramid",
    "perceiver",
    "entity_recognition",
    "pixel_decoder",
    "mask_decoder",
    "mask_queries",
    "lm_head",
]
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class CheckpointNotFound(FileNotFoundError):
    """Raised with a message naming the fallback, never a raw hub traceback."""


def resolve_checkpoint(name_or_path: str | os.PathLike | None) -> Path:
    """Find a checkpoint folder: embedded default, local folder, or hub id (cache first when offline)."""
    if name_or_path is None:
        if not (EMBEDDED_CHECKPOINT / "config.json").exists():
            raise CheckpointNotFound(
                f"the embedded checkpoint is missing at {EMBEDDED_CHECKPOINT}; reinstall the project or pass a path"
            )
        return EMBEDDED_CHECKPOINT
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise CheckpointNotFound(f"{path} has no config.json: not a checkpoint folder")
        return path
    if str(name_or_path).count("/") != 1:
        raise CheckpointNotFound(f"{name_or_path!r} is neither a folder nor a hub id like 'owner/name'")
    from huggingface_hub import snapshot_download

    try:
        return Path(
            snapshot_download(str(name_or_path), allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model", "*.md"])
        )
    except Exception as error:  # network down, repo missing, offline without cache
        raise CheckpointNotFound(
            f"could not get {name_or_path!r} from the Hugging Face Hub ({type(error).__name__}: {error}). "
            "Nothing is cached for it. Use the embedded model (load_model() with no name), or download the "
            f"weights on a machine with network (`huggingface-cli download {name_or_path}`) and pass the folder."
        ) from None


def quantization_config(precision: str, compute_dtype: torch.dtype) -> BitsAndBytesConfig | None:
    if precision == "4bit":
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=compute_dtype,
            llm_int8_skip_modules=NOT_QUANTIZED,
        )
    if precision == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=NOT_QUANTIZED)
    return None


def load_ours(folder: Path, precision: str, device_map) -> tuple[HyperSegForSegmentation, object]:
    """Our safetensors layout -> model (through transformers/accelerate) and tokenizer."""
    cuda = torch.cuda.is_available()
    compute = torch.bfloat16 if (cuda and precision in ("4bit", "8bit")) else torch.float32
    dtype = DTYPES.get(precision, compute)
    model = HyperSegForSegmentation.from_pretrained(
        folder, dtype=dtype, device_map=device_map, quantization_config=quantization_config(precision, compute)
    )
    tokenizer = AutoTokenizer.from_pretrained(folder)
    add_seg_token(tokenizer)
    return model, tokenizer


def update_config(folder: str | os.PathLike, values: dict) -> None:
    """Set these keys of a checkpoint folder's ``config.json`` (settings picked on val after training: thresholds,
    edge refinement), leaving the rest as training wrote it."""
    path = Path(folder) / "config.json"
    config = json.loads(path.read_text())
    config.update(values)
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
