"""Small builders shared by the tests: batches for every prompt family on the tiny model."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import torch

from hyperseg_lite.modeling.losses import SegmentationTarget
from hyperseg_lite.prompts import class_prompt, referring_prompt, region_prompt

ROOT = Path(__file__).resolve().parents[1]
TOOL_FOLDERS = (ROOT / "tools", ROOT / "research" / "tools")  # user tools; one-off research diagnostics


def load_tool(name: str) -> ModuleType:
    """A script of ``tools/`` or ``research/tools/`` (not a package) imported as a module, for testing it."""
    path = next((folder / f"{name}.py" for folder in TOOL_FOLDERS if (folder / f"{name}.py").exists()), None)
    if path is None:
        raise FileNotFoundError(f"no tool {name}.py in {', '.join(str(f) for f in TOOL_FOLDERS)}")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def image_batch(processor, batch: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random images of odd sizes, prepared like the pipeline does."""
    gen = torch.Generator().manual_seed(seed)
    prepared = [
        processor.prepare_image(torch.randint(0, 256, (37 + 9 * i, 53 - 5 * i, 3), generator=gen, dtype=torch.uint8))
        for i in range(batch)
    ]
    return torch.stack([p.pixel_values for p in prepared]), torch.stack([p.global_pixel_values for p in prepared])


def encode_mixed(processor, kinds: list[str]) -> tuple[dict, list]:
    """One prompt per entry of ``kinds`` ("refer", "class", "region"), with lengths that differ."""
    encoded, region_masks = [], []
    size = processor.config.image_size
    for i, kind in enumerate(kinds):
        if kind == "refer":
            expression = "the red circle" + " on the left" * i
            encoded.append(processor.encode(referring_prompt(), expression=expression))
            region_masks.append(None)
        elif kind == "class":
            names = ["circle", "sky", "blue star"][: 2 + i % 2]
            encoded.append(processor.encode(class_prompt(len(names)), class_names=names))
            region_masks.append(None)
        else:
            count = 1 + i % 2
            masks = torch.zeros(count, size, size, dtype=torch.bool)
            for r in range(count):
                masks[r, 4 + 8 * r : 20 + 8 * r, 6:30] = True
            encoded.append(processor.encode(region_prompt(count), num_regions=count))
            region_masks.append(masks)
    return processor.collate(encoded), region_masks


def targets_for(
    batch: dict, region_masks: list, kinds: list[str], size: int, seed: int = 0
) -> list[SegmentationTarget]:
    gen = torch.Generator().manual_seed(seed)
    targets = []
    for i, kind in enumerate(kinds):
        if kind == "region":
            masks = region_masks[i].clone()
            labels = torch.arange(masks.shape[0])
        else:
            masks = torch.rand(1 + (kind == "class"), size, size, generator=gen) > 0.6
            labels = torch.zeros(masks.shape[0], dtype=torch.long) if kind == "refer" else torch.arange(masks.shape[0])
        targets.append(SegmentationTarget(masks=masks, labels=labels, instance_ids=torch.arange(masks.shape[0])))
    return targets


def run_mixed(model, processor, kinds, with_targets=False, state=None, seed=0):
    """The model on one batch holding one prompt of each of ``kinds`` -> (output, batch, targets); with
    ``with_targets`` the losses too."""
    batch, regions = encode_mixed(processor, kinds)
    pixels, global_pixels = image_batch(processor, len(kinds), seed)
    targets = targets_for(batch, regions, kinds, processor.config.image_size) if with_targets else None
    out = model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        pixel_values=pixels,
        global_pixel_values=global_pixels,
        class_spans=batch["class_spans"],
        refer_mask=batch["refer_mask"],
        region_masks=regions,
        labels=batch["labels"] if with_targets else None,
        targets=targets,
        temporal_state=state,
    )
    return out, batch, targets


def launch_two_cpu_processes(module: str, args: list[str], port: int) -> subprocess.CompletedProcess:
    """``accelerate launch --multi_gpu --num_processes 2 -m MODULE ARGS`` on CPU processes joined over gloo
    (a machine without CUDA), one thread each, from the repository root."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    launch = [
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(port),
    ]
    command = [sys.executable, "-m", "accelerate.commands.launch", *launch, "-m", module, *args]
    return subprocess.run(
        command, cwd=Path(__file__).resolve().parents[1], env=env, capture_output=True, text=True, timeout=300
    )


@contextmanager
def one_thread() -> Iterator[None]:
    """Torch at one intra-op thread inside the block, as launched test processes run; the count is restored after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def with_attribute_groups(*groups: str, seed: int = 0):
    """A random tiny model (eval mode) with these attribute score groups ("colour", "category") switched on."""
    from hyperseg_lite import build_random_model
    from hyperseg_lite.data.vocabulary import CATEGORIES, COLOUR_NAMES

    loaded = build_random_model("tiny", seed=seed)
    for group in groups:
        enable_attribute_group(loaded.model.eval(), group, {"colour": COLOUR_NAMES, "category": CATEGORIES}[group])
    return loaded


def enable_attribute_group(model, group: str, values) -> None:
    """Switch the ``group`` attribute scores on over a model's weights, as ``train --<group>-attributes`` does."""
    model.enable_attribute_scores(group, len(values), model.attribute_source(group))


def check_question_head_switch(tmp_path, loaded, name: str, group: str, gate: str) -> None:
    """Switching the question head ``name`` ("colour_relation" / "category_ranking") on over trained weights moves
    no answer; once its ``gate`` layer says "asked", the referring scores move and the class scores do not; the
    switch and the head survive a save and reload. ``group``: its key among the expression's text logits."""
    from hyperseg_lite import load_model

    model, processor = loaded.model, loaded.processor
    with torch.no_grad():
        before = run_mixed(model, processor, ["refer", "class"])[0]
    setattr(model.config.decoder_config, name, True)
    getattr(model.mask_decoder, f"enable_{name}")(model.config.text_config.hidden_size)
    with torch.no_grad():
        after = run_mixed(model, processor, ["refer", "class"])[0]
    assert torch.allclose(after.prompt_logits.sigmoid(), before.prompt_logits.sigmoid(), atol=1e-3)
    assert group in after.refer_attribute_logits
    with torch.no_grad():  # "trained": every expression asks it, and the referring scores move
        getattr(getattr(model.mask_decoder, name), gate).bias.copy_(torch.tensor([-8.0, 8.0]))
        changed = run_mixed(model, processor, ["refer", "class"])[0]
    assert not torch.allclose(changed.prompt_logits[0], before.prompt_logits[0], atol=0.05)
    assert torch.equal(changed.prompt_logits[1], before.prompt_logits[1])  # class scores untouched
    model.save_pretrained(tmp_path / "ckpt")
    loaded.tokenizer.save_pretrained(tmp_path / "ckpt")
    reloaded = load_model(tmp_path / "ckpt", precision="fp32", device_map="cpu").model
    assert getattr(reloaded.config.decoder_config, name) is True
    with torch.no_grad():
        assert torch.equal(run_mixed(reloaded, processor, ["refer", "class"])[0].prompt_logits, changed.prompt_logits)
