"""Copy a training checkpoint's inference files into ``assets/hyperseg-lite`` (the embedded default model).

    python tools/ship_checkpoint.py runs/lite2/checkpoint

What ``load_model`` needs travels (weights, config, tokenizer), plus four optional files when the checkpoint has
them: a subword tokenizer's ``words.txt`` (the vocabulary the real-word gate of ``evaluate`` counts), a ``lite``
checkpoint's training-only shape head (6 KB), so that a new cycle can start from shipped weights with
``train --init assets/hyperseg-lite --continue-shape-head``, and the reports of ``tools/refit_category_head.py``
and ``tools/fit_question_heads.py``.
An optional file the checkpoint lacks is removed from the output: it belonged to other weights. Optimizer and
scheduler state stay behind.
The model card (``README.md`` there) is written by hand from ``python -m hyperseg_lite.evaluate`` runs.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from hyperseg_lite.loading import EMBEDDED_CHECKPOINT, load_model
from hyperseg_lite.subword_tokenizer import WORDS_FILE
from hyperseg_lite.training.attribute_supervision import QUESTION_HEADS_REPORT_FILE
from hyperseg_lite.training.colour_blind_category import REFIT_REPORT_FILE
from hyperseg_lite.training.shape_auxiliary import SHAPE_HEAD_FILE

FILES = ("model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json")
OPTIONAL_FILES = (WORDS_FILE, SHAPE_HEAD_FILE, REFIT_REPORT_FILE, QUESTION_HEADS_REPORT_FILE)
MAX_BYTES = 60 * 1024 * 1024


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--output", type=Path, default=EMBEDDED_CHECKPOINT)
    args = parser.parse_args(argv)
    args.output.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        shutil.copy2(args.checkpoint / name, args.output / name)
    for name in OPTIONAL_FILES:
        if (args.checkpoint / name).is_file():
            shutil.copy2(args.checkpoint / name, args.output / name)
        elif (args.output / name).exists():  # fitted to other weights, it would mislead a next cycle or the gate
            (args.output / name).unlink()
            print(f"removed {name} from {args.output}: {args.checkpoint} has none")
    size = (args.output / "model.safetensors").stat().st_size
    if size > MAX_BYTES:
        raise SystemExit(f"weights are {size / 2**20:.1f} MiB; the embedded model must stay under 60 MiB")
    loaded = load_model(args.output)  # fails loudly if anything is missing
    print(f"shipped {loaded.describe()} ({size / 2**20:.1f} MiB) to {args.output}")


if __name__ == "__main__":
    main()
