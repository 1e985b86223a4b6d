"""Stage 1: pretrain the image encoders (pyramid + global tower) on the world's dense annotation.

    python -m hyperseg_lite.pretrain_vision --preset lite2 --steps 6000 --output runs/vision
    python -m hyperseg_lite.pretrain_vision --resume runs/vision          # continue; the folder holds the switches
    python -m hyperseg_lite.pretrain_vision --init-encoders runs/vision/checkpoint --freeze-encoders \
        --pixel-decoder-weight 1 --steps 1000 --output runs/vision_pd    # then the pixel decoder on them
    python -m hyperseg_lite.train --preset lite2 --init-vision runs/vision_pd/checkpoint ...   # stage 2

HyperSeg's towers come pretrained (SigLIP; a COCO Mask2Former Swin). The small presets have no such weights
and the world has no web-scale data, so this is their analogue: the pyramid learns per-pixel class, object colour
and outlines through a small FPN head, the global tower learns the class and colour of each token's cell. Both
heads are dropped afterwards. Two object-level losses are optional: ``--object-loss-weight`` (each object's shape
from its mask-pooled pyramid features) and ``--deep-colour-loss-weight`` (its colour from the two deepest stages
only: the dense head can read colour off the finest stage, so without it the stages the mask decoder attends to
drop colour, and referring expressions lead with colour). Every ``--eval-every`` steps the run measures its gates
on fixed val scenes: a linear probe of the shape category on mask-pooled pyramid features, and the dense head's
thing mIoU; and ``deep_colour_probe``, the same probe for the colour on the two deepest stages.

``--pixel-decoder-weight`` pretrains the model's pixel decoder as well (its heads: ``training/vision_heads.py``),
so stage 2 starts with shape and colour on every level the mask decoder reads: without it stage 2 trained the pixel
decoder from scratch on shape-naming prompts and the levels lost colour (docs/research/embedded-v2.md). The gates
gain ``decoder_thing_miou`` (the linear head on ``mask_features``) and per attended level (strides 32, 16, 8) the
probes ``decoder_shape_probe_sN`` and ``decoder_colour_probe_sN``, and ``decoder_instance_probe``: a linear map
fit on train scenes turns each val object's mask-pooled ``mask_features`` into a query, and its dot product with
every pixel draws the object's mask (mean IoU; ``decoder_instance_below_half``, the share of objects under 0.5:
merged with a neighbour or split). ``--instance-loss-weight`` trains ``mask_features`` for exactly that (the head:
``InstanceQueryHead``); measured, it raises the probe but slows stage 2 (docs/research/embedded-v2.md), so it is
off in the recipe. ``--init-encoders`` starts from an earlier stage-1 run's encoders (and its pyramid heads);
``--freeze-encoders`` then trains the pixel decoder alone on them. ``--colour-blind-weight`` adds the colour-blind
shape term (``training/colour_blind_shapes.py``), against colour vetoing shapes in colours never seen with them;
measured, it did not move those (docs/research/embedded-v2.md), so it is off in the recipe. Every evaluation also
reports ``held_out_pair_acc`` and ``train_pair_acc``: on compositional scenes, the share of each object's pixels the
dense head names with its category, for category-colour pairs training never showed and for the train pairs beside
them (``decoder_`` for the ``mask_features`` head); and ``first_placed_acc``, the same share for the val scenes'
objects placed first, the fair control of the held-out pairs (placed first in their scenes, so the most covered).
``--pyramid two_stream`` trains a two-stream pyramid (``modeling/two_stream_pyramid.py``): its shape stream reads
the batch with every segment at a random brightness and alone gives the thing classes' logits
(``TwoStreamDenseHead``) and the object loss; its evaluations add ``shape_stream_probe``, the shape probe on that
stream's channels alone.
Output folder: ``args.json`` (the run's switches), ``config.json`` (the encoders' shapes, which
``--init-encoders`` and ``train --init-vision`` build from), ``log.csv``, ``eval.csv`` and ``checkpoint/``
(``encoders.safetensors`` with the model's own parameter names, the heads, optimizer state and step).
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from torch import nn
from tqdm.auto import tqdm
from transformers import get_cosine_schedule_with_warmup

from .configuration_hyperseg import HyperSegConfig, conv_encoder_config
from .data.world import World
from .modeling.pixel_decoder import PixelDecoder
from .modeling.two_stream_pyramid import build_pyramid
from .modeling.vision_tower import GlobalVisionTower, tower_width
from .processing_hyperseg import HyperSegProcessor
from .tokenization import build_byte_tokenizer
from .training.colour_blind_shapes import (
    FrozenBatchStatistics,
    PairAccuracy,
    colour_blind_loss,
    follow_weight,
    grey,
    recolour,
)
from .training.vision_heads import (
    NUM_THINGS,
    DensePyramidHead,
    InstanceQueryHead,
    LevelObjectHeads,
    MaskFeatureHead,
    ObjectHead,
    TokenHead,
    TwoStreamDenseHead,
    cell_labels,
    dense_losses,
    instance_ious,
    instance_losses,
    instance_targets,
    mask_pool,
    shape_levels,
    split_dense,
    token_losses,
)
from .training.vision_targets import NUM_CLASSES, NUM_COLOURS, DenseTargets, ScenePool, fixed_scenes

ENCODERS_FILE = "encoders.safetensors"
HEADS_FILE = "heads.safetensors"
PROBE_GATE = 0.90  # linear-probe accuracy of the shape category on val objects
THING_MIOU_GATE = 0.80  # dense head, val
DEEP_LEVELS = slice(2, 4)  # the stride-16 and -32 stages
DECODER_LEVEL_STRIDES = (32, 16, 8)  # the pixel decoder's attended levels, in its order
# encoder choices for the A/B (lite-sized); the preset's own choice is used when none is given
PYRAMIDS = {
    "resnet": conv_encoder_config("resnet", [32, 64, 128, 256], [2, 2, 2, 2], image_size=256),
    "convnext": conv_encoder_config("convnext", [32, 64, 128, 256], [2, 2, 4, 2], image_size=256),
    # deeper where the maps are small (strides 16, 32): +1.8 M parameters, 18% more time; at 8,000 steps thing mIoU
    # +1.6 and shape probe +0.5 over "resnet" (docs/research/embedded-v2.md, "A deeper pyramid for stage 1")
    "resnet_deep": conv_encoder_config("resnet", [32, 64, 128, 256], [2, 2, 4, 3], image_size=256),
    # the ResNet reading brightness alone, beside a small colour stream (COLOUR_STREAMS): the categories cannot be
    # told from colour, so colour cannot veto one never seen in it (modeling/two_stream_pyramid.py)
    "two_stream": conv_encoder_config("resnet", [32, 64, 128, 256], [2, 2, 2, 2], image_size=256, num_channels=1),
    # the same, its shape stream reading colour: in stage 1 every segment in a random colour (edges stay visible)
    "two_stream_rgb": conv_encoder_config("resnet", [32, 64, 128, 256], [2, 2, 2, 2], image_size=256),
}
COLOUR_STREAM = conv_encoder_config("resnet", [16, 32, 32, 64], [1, 1, 1, 1], image_size=256)
COLOUR_STREAMS = {"two_stream": COLOUR_STREAM, "two_stream_rgb": COLOUR_STREAM}
GLOBAL_TOWERS = {
    "siglip": None,  # lite's small SigLIP ViT, taken from that preset
    "resnet": conv_encoder_config("resnet", [32, 64, 128], [1, 2, 2], image_size=128, backbone=False),
    "convnext": conv_encoder_config("convnext", [32, 64, 128], [1, 2, 2], image_size=128, backbone=False),
}


class ImageEncoders(nn.Module):
    """The model's two image encoders (and, when stage 1 trains it, its pixel decoder) under the model's own
    attribute names, so the weights load into it as is."""

    def __init__(self, config: HyperSegConfig, pixel_decoder: bool = False) -> None:
        super().__init__()
        self.pyramid = build_pyramid(config)
        self.global_vision = GlobalVisionTower(
            config.vision_config, config.llm_hidden_size, config.vision_feature_layer
        )
        self.pixel_decoder = (
            PixelDecoder.from_config(config.decoder_config, self.pyramid.channels) if pixel_decoder else None
        )

    def encoder_state(self) -> dict[str, torch.Tensor]:
        """Everything but the global projector, which stage 2 trains with the LLM."""
        return {
            k: v.detach().contiguous()
            for k, v in self.state_dict().items()
            if not k.startswith("global_vision.projector.")
        }


def encoders_of_run(checkpoint: str | Path) -> dict:
    """The encoder fields of the config a stage-1 run saved beside ``checkpoint`` (none for runs older than the
    file), so that a later stage (``--init-encoders``, ``train --init-vision``) builds encoders of its shapes."""
    path = Path(checkpoint).parent / "config.json"
    if not path.exists():
        return {}
    saved = json.loads(path.read_text())
    fields = ("pyramid_config", "pyramid_colour_config", "vision_config", "vision_feature_layer")
    return {name: saved[name] for name in fields if name in saved}


def build_config(
    preset: str, pyramid: str | None, global_tower: str | None, init_encoders: str | None = None
) -> HyperSegConfig:
    overrides = encoders_of_run(init_encoders) if init_encoders is not None else {}
    if pyramid is not None:
        overrides["pyramid_config"] = PYRAMIDS[pyramid]
        overrides["pyramid_colour_config"] = COLOUR_STREAMS.get(pyramid)
    if global_tower is not None:
        if global_tower == "siglip":
            overrides["vision_config"] = HyperSegConfig.from_preset("lite").vision_config.to_dict()
            overrides["vision_feature_layer"] = -2
        else:
            overrides["vision_config"] = GLOBAL_TOWERS[global_tower]
            overrides["vision_feature_layer"] = -1
    return HyperSegConfig.from_preset(preset, **overrides)


def to_tensors(
    processor: HyperSegProcessor,
    items: list[DenseTargets],
    flip: np.ndarray | None = None,
    grey_rng: np.random.Generator | None = None,
    view=grey,
):
    """Images through the model's own preprocessing (as at inference), targets as tensors; optional h-flips;
    with ``grey_rng`` the images as ``view`` draws them at random (:func:`~.training.colour_blind_shapes.grey`:
    without colour; ``recolour``: every segment in a random colour)."""
    pixels, globals_, classes, colours, outline = [], [], [], [], []
    for row, item in enumerate(items):
        image = item.image if grey_rng is None else view(item.image, item.segments, grey_rng)
        arrays = [image, item.classes, item.colours, item.outline]
        if flip is not None and flip[row]:
            arrays = [np.ascontiguousarray(a[:, ::-1]) for a in arrays]
        prepared = processor.prepare_image(torch.from_numpy(arrays[0]))
        pixels.append(prepared.pixel_values)
        globals_.append(prepared.global_pixel_values)
        classes.append(torch.from_numpy(arrays[1]).long())
        colours.append(torch.from_numpy(arrays[2]).long())
        outline.append(torch.from_numpy(arrays[3]).float())
    return (
        torch.stack(pixels),
        torch.stack(globals_),
        torch.stack(classes),
        torch.stack(colours),
        torch.stack(outline),
    )


# ---------------------------------------------------------------------------------------------- evaluation
def object_colours(items: list[DenseTargets]) -> torch.Tensor:
    """All objects' colour indices, in the order of :func:`object_masks`."""
    return torch.from_numpy(np.concatenate([item.object_colours for item in items]))


def object_masks(items: list[DenseTargets], flip: np.ndarray | None = None) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Each scene's object masks (n, H, W) (h-flipped where ``flip`` says, as :func:`to_tensors` flips the image)
    and all objects' categories, in order."""
    masks = []
    for row, item in enumerate(items):
        segments = item.segments[:, ::-1] if flip is not None and flip[row] else item.segments
        count = len(item.object_categories)
        masks.append(torch.from_numpy(segments[None] == np.arange(count)[:, None, None]).float())
    return masks, torch.from_numpy(np.concatenate([item.object_categories for item in items]))


@torch.no_grad()
def object_features(
    encoders: ImageEncoders, processor: HyperSegProcessor, items: list[DenseTargets]
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Mask-pooled features of every object: ``"pyramid"`` (all four stages concatenated, in order) and, with a
    pixel decoder, ``"s32"`` / ``"s16"`` / ``"s8"`` (its attended levels); and each object's category and colour."""
    features, categories, colours = {}, [], []
    for start in range(0, len(items), 16):
        chunk = items[start : start + 16]
        pixels, *_ = to_tensors(processor, chunk)
        masks, chunk_categories = object_masks(chunk)
        pyramid = encoders.pyramid(pixels)
        features.setdefault("pyramid", []).append(mask_pool(pyramid, masks).numpy())
        if encoders.pixel_decoder is not None:
            _, levels = encoders.pixel_decoder(pyramid)
            for stride, level in zip(DECODER_LEVEL_STRIDES, levels):
                features.setdefault(f"s{stride}", []).append(mask_pool([level], masks).numpy())
        categories.append(chunk_categories.numpy())
        colours.append(object_colours(chunk).numpy())
    features = {name: np.concatenate(parts) for name, parts in features.items()}
    return features, np.concatenate(categories), np.concatenate(colours)


def _probe(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray) -> float:
    """Logistic regression fit on train objects, accuracy on val ones."""
    scaler = StandardScaler().fit(x_train)
    probe = LogisticRegression(max_iter=3000, C=1.0).fit(scaler.transform(x_train), y_train)
    return float((probe.predict(scaler.transform(x_val)) == y_val).mean())


def object_probes(encoders, processor, train_items, val_items) -> dict[str, float]:
    """Linear probes fit on train objects, accuracy on val ones: ``shape_probe``, the 12 shape categories from all
    four stages (the gate), and ``deep_colour_probe``, the colour from the two deepest stages alone
    (``DEEP_LEVELS``), the ones the mask decoder attends to (the dense head can take colour from the finest);
    with a pixel decoder, both per attended level (``decoder_shape_probe_s32`` ...)."""
    f_train, shapes_train, colours_train = object_features(encoders, processor, train_items)
    f_val, shapes_val, colours_val = object_features(encoders, processor, val_items)
    x_train, x_val = f_train.pop("pyramid"), f_val.pop("pyramid")
    channels = encoders.pyramid.channels  # the stages' columns, concatenated in order
    first = sum(channels[: DEEP_LEVELS.start])
    deep = slice(first, first + sum(channels[DEEP_LEVELS]))
    probes = {
        "shape_probe": _probe(x_train, shapes_train, x_val, shapes_val),
        "deep_colour_probe": _probe(x_train[:, deep], colours_train, x_val[:, deep], colours_val),
    }
    shape_channels = getattr(encoders.pyramid, "shape_channels", None)
    if shape_channels is not None:  # a two-stream pyramid: the same probe on the shape stream's columns alone
        starts = np.cumsum([0, *channels[:-1]])
        columns = np.concatenate([np.arange(start, start + c) for start, c in zip(starts, shape_channels)])
        probes["shape_stream_probe"] = _probe(x_train[:, columns], shapes_train, x_val[:, columns], shapes_val)
    for level in f_train:
        probes[f"decoder_shape_probe_{level}"] = _probe(f_train[level], shapes_train, f_val[level], shapes_val)
        probes[f"decoder_colour_probe_{level}"] = _probe(f_train[level], colours_train, f_val[level], colours_val)
    return probes


INSTANCE_PROBE_SCENES = 100  # train scenes the instance probe is fit on (their mask features stay in memory)
INSTANCE_PROBE_STEPS = 300  # Adam steps, 16 scenes each


@torch.no_grad()
def _instance_inputs(encoders: ImageEncoders, processor: HyperSegProcessor, items: list[DenseTargets]) -> list:
    """Per 16 scenes: ``mask_features`` (half precision) and the object masks at their resolution."""
    chunks = []
    for start in range(0, len(items), 16):
        chunk = items[start : start + 16]
        pixels, *_ = to_tensors(processor, chunk)
        features = encoders.pixel_decoder(encoders.pyramid(pixels))[0]
        masks = instance_targets(object_masks(chunk)[0], features.shape[-2:])
        if sum(len(m) for m in masks):
            chunks.append((features.half(), masks))
    return chunks


def instance_probe(encoders: ImageEncoders, processor, train_items, val_items) -> dict[str, float]:
    """How well ``mask_features`` tell each object from its neighbours: an :class:`InstanceQueryHead` fit on the
    frozen features of train scenes, then each val object's mask from its own pooled query. ``decoder_instance_probe``
    is their mean IoU, ``decoder_instance_below_half`` the share under 0.5 (merged with a neighbour, or split)."""
    train = _instance_inputs(encoders, processor, train_items[:INSTANCE_PROBE_SCENES])
    val = _instance_inputs(encoders, processor, val_items)
    with torch.random.fork_rng():  # the run's own random stream stays as it was
        torch.manual_seed(0)
        head = InstanceQueryHead(encoders.pixel_decoder.mask_features.out_channels)
    optimizer = torch.optim.Adam(head.parameters(), lr=3e-3)
    for step in range(INSTANCE_PROBE_STEPS):
        features, masks = train[step % len(train)]
        loss = sum(instance_losses(head(features.float(), masks), masks).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        ious = torch.cat([instance_ious(head(features.float(), masks), masks) for features, masks in val])
    return {
        "decoder_instance_probe": float(ious.mean()),
        "decoder_instance_below_half": float((ious < 0.5).float().mean()),
    }


class _DenseScore:
    """Accumulates one dense head's per-class intersection / union and object-pixel colour hits."""

    def __init__(self) -> None:
        self.inter, self.union = torch.zeros(NUM_CLASSES), torch.zeros(NUM_CLASSES)
        self.colour_hits = self.colour_total = 0

    def add(self, logits: torch.Tensor, classes: torch.Tensor, colours: torch.Tensor) -> None:
        logits = F.interpolate(logits, size=classes.shape[-2:], mode="bilinear", align_corners=False)
        class_logits, colour_logits, _ = split_dense(logits)
        predicted = class_logits.argmax(1)
        for k in range(NUM_CLASSES):
            self.inter[k] += ((predicted == k) & (classes == k)).sum()
            self.union[k] += ((predicted == k) | (classes == k)).sum()
        objects = colours < colour_logits.shape[1] - 1
        self.colour_hits += int(((colour_logits.argmax(1) == colours) & objects).sum())
        self.colour_total += int(objects.sum())

    def result(self, prefix: str = "") -> dict[str, float]:
        iou = self.inter / self.union.clamp(min=1)
        return {
            f"{prefix}thing_miou": float(iou[:NUM_THINGS].mean()),
            f"{prefix}stuff_miou": float(iou[NUM_THINGS:].mean()),
            f"{prefix}colour_acc": self.colour_hits / max(self.colour_total, 1),
        }


@torch.no_grad()
def pair_metrics(encoders, heads, processor, items) -> dict[str, float]:
    """On compositional scenes: how often the dense heads name the category of objects whose category-colour pair
    training never showed, against the train pairs beside them (``training/colour_blind_shapes.py``)."""
    pyramid_score, decoder_score = PairAccuracy(), PairAccuracy()
    for start in range(0, len(items), 16):
        chunk = items[start : start + 16]
        pixels, *_ = to_tensors(processor, chunk)
        pyramid = encoders.pyramid(pixels)
        pyramid_score.add(heads["dense"](pyramid), chunk)
        if encoders.pixel_decoder is not None:
            decoder_score.add(heads["mask_features"](encoders.pixel_decoder(pyramid)[0]), chunk)
    pairs = {
        **pyramid_score.result(),
        **(decoder_score.result("decoder_") if encoders.pixel_decoder is not None else {}),
    }
    return {k: v for k, v in pairs.items() if "pair_acc" in k}  # the first-placed control is on val scenes


@torch.no_grad()
def dense_metrics(encoders, heads, processor, items) -> dict[str, float]:
    """Val thing / stuff mIoU and colour accuracy of the dense head (and of the ``mask_features`` head, prefixed
    ``decoder_``, when stage 1 trains the pixel decoder); class / colour accuracy of the token head."""
    pyramid_score, decoder_score, first_placed = _DenseScore(), _DenseScore(), PairAccuracy()
    token_hits = token_colour_hits = token_total = 0
    for start in range(0, len(items), 16):
        pixels, global_pixels, classes, colours, _ = to_tensors(processor, items[start : start + 16])
        pyramid = encoders.pyramid(pixels)
        dense = heads["dense"](pyramid)
        pyramid_score.add(dense, classes, colours)
        first_placed.add(dense, items[start : start + 16])
        if encoders.pixel_decoder is not None:
            decoder_score.add(heads["mask_features"](encoders.pixel_decoder(pyramid)[0]), classes, colours)
        token_logits = heads["tokens"](encoders.global_vision.encode(global_pixels))
        grid = int(round(token_logits.shape[1] ** 0.5))
        cell_classes = cell_labels(classes, grid, NUM_CLASSES)
        cell_colours = cell_labels(colours, grid, NUM_COLOURS)
        token_hits += int((token_logits[..., :NUM_CLASSES].argmax(-1) == cell_classes).sum())
        token_colour_hits += int((token_logits[..., NUM_CLASSES:].argmax(-1) == cell_colours).sum())
        token_total += cell_classes.numel()
    return {
        **pyramid_score.result(),
        "first_placed_acc": first_placed.result()["first_placed_acc"],
        "token_class_acc": token_hits / max(token_total, 1),
        "token_colour_acc": token_colour_hits / max(token_total, 1),
        **(decoder_score.result("decoder_") if encoders.pixel_decoder is not None else {}),
    }


def pixel_decoder_losses(
    pixel_decoder: PixelDecoder,
    heads: nn.ModuleDict,
    pyramid: list[torch.Tensor],
    dense_targets: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    objects: tuple[list[torch.Tensor], torch.Tensor, torch.Tensor],
    weight: float,
    instance_weight: float = 0.0,
) -> dict[str, torch.Tensor]:
    """The dense losses on ``mask_features`` (``decoder_*``) and each attended level's object shape and colour
    cross-entropies (``level_shape``, ``level_colour``, averaged over the levels), all times ``weight``; with
    ``instance_weight``, each object's mask from its own pooled query (``instance_bce``, ``instance_dice``, times
    ``instance_weight``; the head ``heads["instances"]``).

    ``dense_targets``: classes, colours, outline as :func:`to_tensors` gives them; ``objects``: the object masks,
    categories and colours of :func:`object_masks` / :func:`object_colours`."""
    mask_features, levels = pixel_decoder(pyramid)
    dense = dense_losses(heads["mask_features"](mask_features), *dense_targets)
    losses = {f"decoder_{name}": weight * value for name, value in dense.items()}
    masks, categories, object_colour = objects
    if len(categories) == 0:
        zero = (sum(level.sum() for level in levels) + mask_features.sum()) * 0
        instance_zero = {"instance_bce": zero, "instance_dice": zero} if instance_weight > 0 else {}
        return {**losses, "level_shape": zero, "level_colour": zero, **instance_zero}
    per_level = heads["decoder_levels"](levels, masks)
    losses["level_shape"] = weight * sum(F.cross_entropy(s, categories) for s, _ in per_level) / len(per_level)
    losses["level_colour"] = weight * sum(F.cross_entropy(c, object_colour) for _, c in per_level) / len(per_level)
    if instance_weight > 0:
        logits = heads["instances"](mask_features, masks)
        targets = instance_targets(masks, mask_features.shape[-2:])
        losses.update({k: instance_weight * v for k, v in instance_losses(logits, targets).items()})
    return losses


# ---------------------------------------------------------------------------------------------- checkpoints
def save_checkpoint(folder: Path, encoders, heads, optimizer, scheduler, state: dict) -> None:
    """Written beside ``folder`` and swapped in when complete, so a killed run keeps its last whole checkpoint."""
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    save_file(encoders.encoder_state(), partial / ENCODERS_FILE)
    save_file({k: v.detach().contiguous() for k, v in heads.state_dict().items()}, partial / HEADS_FILE)
    torch.save(optimizer.state_dict(), partial / "optimizer.pt")  # our own files; loaded with weights_only=True
    torch.save(scheduler.state_dict(), partial / "scheduler.pt")
    (partial / "state.json").write_text(json.dumps(state))
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)


def load_encoders(encoders: nn.Module, checkpoint: Path) -> None:
    """Load stage-1 weights into an :class:`ImageEncoders` or a whole model (same names); projector untouched.

    A checkpoint without a pixel decoder leaves the target's own (random) one as it is."""
    weights = load_file(str(Path(checkpoint) / ENCODERS_FILE))
    own = encoders.state_dict()
    foreign = [k for k, v in weights.items() if k not in own or own[k].shape != v.shape]
    if foreign:
        raise ValueError(
            f"{checkpoint} holds encoder weights that do not fit this model ({foreign[0]}): "
            "was it pretrained for another preset?"
        )
    encoders.load_state_dict(weights, strict=False)


# ---------------------------------------------------------------------------------------------- the run
SWITCHES = (
    "preset",
    "pyramid",
    "global_tower",
    "steps",
    "batch_size",
    "lr",
    "warmup",
    "weight_decay",
    "seed",
    "pool_size",
    "pool_refresh",
    "eval_scenes",
    "probe_scenes",
    "save_every",
    "eval_every",
    "object_loss_weight",
    "deep_colour_loss_weight",
    "pixel_decoder_weight",
    "instance_loss_weight",
    "init_encoders",
    "freeze_encoders",
    "colour_blind_weight",
)
# runs started before a switch existed had it off
SWITCH_DEFAULTS_OF_OLDER_RUNS = {
    "object_loss_weight": 0.0,
    "deep_colour_loss_weight": 0.0,
    "pixel_decoder_weight": 0.0,
    "instance_loss_weight": 0.0,
    "init_encoders": None,
    "freeze_encoders": False,
    "colour_blind_weight": 0.0,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="lite2")
    parser.add_argument("--pyramid", choices=sorted(PYRAMIDS), default=None, help="override the preset's pyramid")
    parser.add_argument(
        "--global-tower", choices=sorted(GLOBAL_TOWERS), default=None, help="override the preset's global tower"
    )
    parser.add_argument("--output", type=Path, default=Path("runs/vision"))
    parser.add_argument(
        "--resume", type=Path, default=None, help="a previous --output folder (its switches are reused)"
    )
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pool-size", type=int, default=1024, help="scenes held in the replay pool")
    parser.add_argument("--pool-refresh", type=int, default=2, help="new scenes drawn per step")
    parser.add_argument("--eval-scenes", type=int, default=150, help="val scenes for the gates")
    parser.add_argument("--probe-scenes", type=int, default=300, help="train scenes the linear probe is fit on")
    parser.add_argument("--save-every", type=int, default=250)
    parser.add_argument("--eval-every", type=int, default=1000)
    parser.add_argument(
        "--object-loss-weight",
        type=float,
        default=0.0,
        help="weight of a per-object shape loss on mask-pooled pyramid features (0: off, the dense losses only)",
    )
    parser.add_argument(
        "--deep-colour-loss-weight",
        type=float,
        default=0.0,
        help="weight of a per-object colour loss on the mask-pooled features of the two deepest stages only, "
        "which the mask decoder attends to (0: off; the dense head reads colour off the finest stage)",
    )
    parser.add_argument(
        "--pixel-decoder-weight",
        type=float,
        default=0.0,
        help="pretrain the model's pixel decoder too, its losses at this weight: a linear dense head on its "
        "mask features, each object's shape and colour from each attended level (0: off, stage 2 starts it random)",
    )
    parser.add_argument(
        "--instance-loss-weight",
        type=float,
        default=0.0,
        help="with --pixel-decoder-weight: each object's mask drawn from its own mask-pooled mask features "
        "(a linear query, dot product with every pixel), BCE and dice at this weight, so that mask features "
        "tell neighbouring objects apart (0: off)",
    )
    parser.add_argument(
        "--init-encoders",
        type=str,
        default=None,
        help="start from this stage-1 checkpoint's encoders and pyramid heads (not its optimizer or step)",
    )
    parser.add_argument(
        "--freeze-encoders",
        action="store_true",
        help="hold the encoders fixed and train the pixel decoder alone (needs --init-encoders and "
        "--pixel-decoder-weight; the encoders' own losses are off)",
    )
    parser.add_argument(
        "--colour-blind-weight",
        type=float,
        default=0.0,
        help="the colour-blind shape term at this weight: the pyramid's dense head also learns the classes of each "
        "batch in grey, and the colour image's class distribution follows the grey one's, so that colour does not "
        "veto a shape in a colour never seen with it (0: off, as in the recipe: measured, it did not help; "
        "training/colour_blind_shapes.py)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.freeze_encoders and (args.init_encoders is None or args.pixel_decoder_weight <= 0):
        parser.error(
            "--freeze-encoders trains the pixel decoder on pretrained encoders: give --init-encoders "
            "and --pixel-decoder-weight"
        )
    if args.instance_loss_weight > 0 and args.pixel_decoder_weight <= 0:
        parser.error("--instance-loss-weight trains the pixel decoder's mask features: give --pixel-decoder-weight")
    if args.freeze_encoders and (
        args.object_loss_weight > 0 or args.deep_colour_loss_weight > 0 or args.colour_blind_weight > 0
    ):
        parser.error(
            "--freeze-encoders: the object, deep colour and colour-blind losses would train the frozen pyramid"
        )
    if args.colour_blind_weight > 0 and (args.pyramid or "").startswith("two_stream"):
        parser.error("--colour-blind-weight: a two-stream pyramid's shape stream is colour-blind already")
    if args.resume is not None:
        saved = {**SWITCH_DEFAULTS_OF_OLDER_RUNS, **json.loads((args.resume / "args.json").read_text())}
        given = {k: getattr(args, k) for k in SWITCHES if k != "steps" and getattr(args, k) != parser.get_default(k)}
        clash = {k: v for k, v in given.items() if saved.get(k) != v}
        if clash:
            parser.error(f"--resume reuses the run's own switches; these differ from it: {sorted(clash)}")
        steps = args.steps if args.steps != parser.get_default("steps") else saved["steps"]
        args = argparse.Namespace(**{**vars(args), **saved, "steps": steps, "output": args.resume})
    elif (args.output / "checkpoint").exists():
        parser.error(f"--output {args.output} already holds a run: continue it with --resume {args.output}")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    config = build_config(args.preset, args.pyramid, args.global_tower, args.init_encoders)
    processor = HyperSegProcessor(build_byte_tokenizer(), config)  # images only: any tokenizer will do
    encoders = ImageEncoders(config, pixel_decoder=args.pixel_decoder_weight > 0)
    two_stream = config.pyramid_colour_config is not None
    # what a two-stream pyramid's shape stream learns from: the batch in grey or every segment in a random colour
    shape_view = recolour if getattr(config.pyramid_config, "num_channels", 3) == 3 else grey
    dense_head = (
        TwoStreamDenseHead(encoders.pyramid.channels, encoders.pyramid.shape_channels)
        if two_stream
        else DensePyramidHead(encoders.pyramid.channels)
    )
    heads = nn.ModuleDict({"dense": dense_head, "tokens": TokenHead(tower_width(config.vision_config))})
    if args.object_loss_weight > 0:  # on a two-stream pyramid, from the shape stream alone
        heads["objects"] = ObjectHead(
            getattr(encoders.pyramid, "shape_channels", encoders.pyramid.channels), NUM_THINGS
        )
    if args.deep_colour_loss_weight > 0:
        heads["deep_colours"] = ObjectHead(encoders.pyramid.channels[DEEP_LEVELS], NUM_COLOURS - 1)
    if encoders.pixel_decoder is not None:
        heads["mask_features"] = MaskFeatureHead(config.decoder_config.mask_dim)
        heads["decoder_levels"] = LevelObjectHeads(
            config.decoder_config.hidden_dim, len(DECODER_LEVEL_STRIDES), NUM_THINGS, NUM_COLOURS - 1
        )
    if args.instance_loss_weight > 0:
        heads["instances"] = InstanceQueryHead(config.decoder_config.mask_dim)
    if args.init_encoders is not None and args.resume is None:
        load_encoders(encoders, Path(args.init_encoders))
        own = heads.state_dict()
        earlier = load_file(str(Path(args.init_encoders) / HEADS_FILE))
        heads.load_state_dict({k: v for k, v in earlier.items() if k in own and own[k].shape == v.shape}, strict=False)
    if args.freeze_encoders:
        frozen = [encoders.pyramid, encoders.global_vision, heads["dense"], heads["tokens"]]
        for module in frozen:
            module.requires_grad_(False)
    params = [p for p in [*encoders.parameters(), *heads.parameters()] if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay)
    scheduler = get_cosine_schedule_with_warmup(optimizer, min(args.warmup, args.steps), args.steps)
    args.output.mkdir(parents=True, exist_ok=True)
    checkpoint = args.output / "checkpoint"
    start, next_scene = 0, 0
    if args.resume is not None and checkpoint.exists():
        load_encoders(encoders, checkpoint)
        heads.load_state_dict(load_file(str(checkpoint / HEADS_FILE)))
        optimizer.load_state_dict(torch.load(checkpoint / "optimizer.pt", weights_only=True))
        scheduler.load_state_dict(torch.load(checkpoint / "scheduler.pt", weights_only=True))
        state = json.loads((checkpoint / "state.json").read_text())
        start, next_scene = state["step"], state["next_scene"]
    else:
        (args.output / "args.json").write_text(json.dumps({k: getattr(args, k) for k in SWITCHES}, indent=1))
        config.to_json_file(str(args.output / "config.json"))  # the encoders' shapes, for stage 2
    print(
        f"stage 1: pyramid {config.pyramid_config.model_type}{' + colour stream' if two_stream else ''} "
        f"({sum(p.numel() for p in encoders.pyramid.parameters()) / 1e6:.2f} M), global tower "
        f"{config.vision_config.model_type} "
        f"({sum(p.numel() for p in encoders.global_vision.encoder.parameters()) / 1e6:.2f} M, "
        f"{config.num_global_tokens} tokens); steps {start} -> {args.steps}",
        flush=True,
    )

    world = World("train", args.seed, image_size=config.image_size)
    pool = ScenePool(world, size=args.pool_size, refresh=args.pool_refresh, start=max(0, next_scene - args.pool_size))
    val_items = fixed_scenes("val", 4242, args.eval_scenes, config.image_size)
    pair_items = fixed_scenes("compositional", 4242, args.eval_scenes, config.image_size)
    probe_items = fixed_scenes("train", 4242, args.probe_scenes, config.image_size)

    def set_train() -> None:
        encoders.train(), heads.train()
        if args.freeze_encoders:  # BatchNorm keeps the statistics of the run they come from
            encoders.pyramid.eval(), encoders.global_vision.eval()

    def evaluate(step: int) -> dict:
        encoders.eval(), heads.eval()
        row = {
            "step": step,
            **dense_metrics(encoders, heads, processor, val_items),
            **pair_metrics(encoders, heads, processor, pair_items),
            **object_probes(encoders, processor, probe_items, val_items),
            **(
                instance_probe(encoders, processor, probe_items, val_items)
                if encoders.pixel_decoder is not None
                else {}
            ),
        }
        set_train()
        row["gates_met"] = row["shape_probe"] >= PROBE_GATE and row["thing_miou"] >= THING_MIOU_GATE
        new = not (args.output / "eval.csv").exists()
        with open(args.output / "eval.csv", "a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)
        tqdm.write(" ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))
        return row

    set_train()
    per_object_losses = (
        args.object_loss_weight > 0 or args.deep_colour_loss_weight > 0 or encoders.pixel_decoder is not None
    )
    log_path = args.output / "log.csv"
    last = {}
    started = time.time()
    for step in tqdm(range(start + 1, args.steps + 1), initial=start, total=args.steps, desc="stage 1"):
        rng = np.random.default_rng([args.seed, step])
        items = pool.batch(rng, args.batch_size)
        flip = rng.random(len(items)) < 0.5
        pixels, global_pixels, classes, colours, outline = to_tensors(processor, items, flip)
        # a two-stream pyramid's shape stream learns from the batch with every segment at a random brightness
        shape_pixels = to_tensors(processor, items, flip, grey_rng=rng, view=shape_view)[0] if two_stream else None
        if per_object_losses:  # each object's mask, category and colour, once per step
            masks, categories = object_masks(items, flip)
            colours_of_objects = object_colours(items)
        if args.freeze_encoders:
            with torch.no_grad():
                pyramid = encoders.pyramid(pixels)
            losses = {}
        else:
            pyramid = encoders.pyramid(pixels) if shape_pixels is None else encoders.pyramid(pixels, shape_pixels)
            dense = heads["dense"](pyramid)
            losses = dense_losses(dense, classes, colours, outline)
            if args.colour_blind_weight > 0:
                grey_pixels = to_tensors(processor, items, flip, grey_rng=rng)[0]
                with FrozenBatchStatistics(encoders.pyramid):
                    grey_dense = heads["dense"](encoders.pyramid(grey_pixels))
                follow = follow_weight(step)
                losses["colour_blind"] = args.colour_blind_weight * colour_blind_loss(
                    dense, grey_dense, classes, follow
                )
        if args.object_loss_weight > 0:
            logits = heads["objects"](mask_pool(shape_levels(encoders.pyramid, pyramid), masks))
            losses["object"] = (
                args.object_loss_weight * F.cross_entropy(logits, categories) if len(categories) else logits.sum() * 0
            )
        if args.deep_colour_loss_weight > 0:
            logits = heads["deep_colours"](mask_pool(pyramid[DEEP_LEVELS], masks))
            losses["deep_colour"] = (
                args.deep_colour_loss_weight * F.cross_entropy(logits, colours_of_objects)
                if len(colours_of_objects)
                else logits.sum() * 0
            )
        if not args.freeze_encoders:
            losses.update(token_losses(heads["tokens"](encoders.global_vision.encode(global_pixels)), classes, colours))
        if encoders.pixel_decoder is not None:
            objects = (masks, categories, colours_of_objects)
            losses.update(
                pixel_decoder_losses(
                    encoders.pixel_decoder,
                    heads,
                    pyramid,
                    (classes, colours, outline),
                    objects,
                    args.pixel_decoder_weight,
                    args.instance_loss_weight,
                )
            )
        total = sum(losses.values())
        losses = {name: float(value.detach()) for name, value in losses.items()}
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        new = not log_path.exists()
        with open(log_path, "a", newline="") as handle:
            writer = csv.writer(handle)
            if new:
                writer.writerow(["step", "seconds", "loss", *losses])
            writer.writerow(
                [
                    step,
                    f"{time.time() - started:.1f}",
                    f"{sum(losses.values()):.4f}",
                    *(f"{v:.4f}" for v in losses.values()),
                ]
            )
        if step % args.save_every == 0 or step == args.steps:
            save_checkpoint(
                checkpoint, encoders, heads, optimizer, scheduler, {"step": step, "next_scene": pool.next_index}
            )
        if step % args.eval_every == 0 or step == args.steps:
            last = evaluate(step)
    return last


if __name__ == "__main__":
    main()
