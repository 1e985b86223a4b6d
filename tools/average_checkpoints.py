"""Average the weights of checkpoints of one architecture, parameter by parameter (a "model soup").

    python tools/average_checkpoints.py assets/hyperseg-lite runs/c14/checkpoint --output runs/mean14

Two runs that start from the same weights often land in one basin, where their mean scores as well as either
or better (Wortsman et al., 2022, "Model soups"). The output is a checkpoint ``load_model`` and ``train --init``
read: the mean ``model.safetensors``, the mean shape head when every input has one, and the first input's
config and tokenizer. ``--weights`` gives a weighted mean (normalised to sum to 1).

It refuses inputs whose configs or tokenizers differ in anything but the class-prompt thresholds (those belong
to one set of weights: pick them again with ``tools/class_threshold.py --write``) and the transformers version
that saved them, tensors whose names, shapes or dtypes differ, integer tensors that differ, and an output folder
that already holds weights.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from hyperseg_lite.loading import load_model
from hyperseg_lite.training.shape_auxiliary import SHAPE_HEAD_FILE

WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
# picked per checkpoint (tools/class_threshold.py, the edge refinement on val); may differ
PER_WEIGHTS_KEYS = (
    "semantic_threshold",
    "segment_threshold",
    "referring_threshold",
    "referring_union_threshold",
    "edge_refinement_size",
    "edge_refinement_eps",
)
# written by whichever transformers saved the folder (requirements.txt allows any 5.x): not the architecture
METADATA_KEYS = ("transformers_version",)


def _architecture(folder: Path) -> dict:
    config = json.loads((folder / "config.json").read_text())
    return {k: v for k, v in config.items() if k not in PER_WEIGHTS_KEYS + METADATA_KEYS}


def check_compatible(folders: list[Path]) -> None:
    """Raise ValueError unless every folder has weights, the same architecture and the same tokenizer."""
    for folder in folders:
        if not (folder / WEIGHTS_FILE).is_file():
            raise ValueError(f"{folder} holds no {WEIGHTS_FILE}")
    first = folders[0]
    for folder in folders[1:]:
        if _architecture(folder) != _architecture(first):
            raise ValueError(
                f"{folder} and {first} have different configs: only checkpoints of one architecture can be averaged"
            )
        for name in TOKENIZER_FILES:
            if (folder / name).read_bytes() != (first / name).read_bytes():
                raise ValueError(f"{folder} and {first} have different {name}")


def average_tensors(state_dicts: list[dict[str, torch.Tensor]], weights: list[float]) -> dict[str, torch.Tensor]:
    """Weighted mean of floating-point tensors (computed in fp32, stored in each tensor's dtype); integer
    tensors (counters, indices) must agree and are copied."""
    names = set(state_dicts[0])
    for other in state_dicts[1:]:
        if set(other) != names:
            raise ValueError(f"the checkpoints hold different tensors: {sorted(names ^ set(other))[:5]}")
    mean = {}
    for name in sorted(names):
        tensors = [sd[name] for sd in state_dicts]
        first = tensors[0]
        if any(t.shape != first.shape or t.dtype != first.dtype for t in tensors):
            raise ValueError(f"{name}: shapes or dtypes differ ({[tuple(t.shape) for t in tensors]})")
        if first.is_floating_point():
            total = sum(w * t.float() for w, t in zip(weights, tensors))
            mean[name] = total.to(first.dtype).contiguous()
        elif all(torch.equal(t, first) for t in tensors[1:]):
            mean[name] = first.clone()
        else:
            raise ValueError(f"{name}: integer tensors differ, and a mean of them means nothing")
    return mean


def average_checkpoints(folders: list[Path], output: Path, weights: list[float] | None = None) -> Path:
    if len(folders) < 2:
        raise ValueError("give at least two checkpoints")
    weights = [1.0] * len(folders) if weights is None else list(weights)
    if len(weights) != len(folders) or any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError("--weights needs one non-negative number per checkpoint, not all zero")
    weights = [w / sum(weights) for w in weights]
    check_compatible(folders)
    if (output / WEIGHTS_FILE).exists():
        raise ValueError(f"{output} already holds {WEIGHTS_FILE}: give the mean another folder")
    output.mkdir(parents=True, exist_ok=True)
    save_file(
        average_tensors([load_file(f / WEIGHTS_FILE) for f in folders], weights),
        output / WEIGHTS_FILE,
        metadata={"format": "pt"},
    )
    if all((f / SHAPE_HEAD_FILE).is_file() for f in folders):
        save_file(average_tensors([load_file(f / SHAPE_HEAD_FILE) for f in folders], weights), output / SHAPE_HEAD_FILE)
    for name in ("config.json", *TOKENIZER_FILES):
        shutil.copy2(folders[0] / name, output / name)
    return output


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", type=Path, nargs="+", help="two or more checkpoint folders")
    parser.add_argument("--output", type=Path, required=True, help="a new folder for the mean")
    parser.add_argument("--weights", type=float, nargs="+", default=None, help="one per checkpoint (default: equal)")
    args = parser.parse_args(argv)
    try:
        output = average_checkpoints(args.checkpoints, args.output, args.weights)
    except ValueError as error:
        parser.error(str(error))
    loaded = load_model(output)  # fails loudly if the result does not load
    print(f"averaged {len(args.checkpoints)} checkpoints into {output}: {loaded.describe()}")
    return output


if __name__ == "__main__":
    main()
