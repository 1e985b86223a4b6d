"""World samples -> model inputs and targets, for every task.

Image tasks give one frame; video tasks give two consecutive frames (t, t + 1) so that the temporal
adapter and the instance-association loss are trained on real frame pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .. import prompts as P
from ..data.world import Sample
from ..modeling.losses import SegmentationTarget
from ..processing_hyperseg import EncodedPrompt, HyperSegProcessor, PreparedImage
from ..visual_prompts import box_mask, disc_mask, scaled_radius, scribble_mask

CLASS_TASKS = {"semantic": "semantic", "instance": "instance", "panoptic": "panoptic", "vis": "instance"}


@dataclass
class Item:
    """One prompt on one frame."""

    encoded: EncodedPrompt
    prepared: PreparedImage
    target: SegmentationTarget
    region_masks: torch.Tensor | None = None


def _to_frame(masks: np.ndarray, prepared: PreparedImage, size: int) -> torch.Tensor:
    """(n, H, W) masks at the image's resolution -> (n, S, S) on the padded model frame."""
    if masks.shape[0] == 0:
        return torch.zeros((0, size, size), dtype=torch.bool)
    h, w = prepared.resized_size
    resized = F.interpolate(torch.from_numpy(masks).float()[:, None], size=(h, w), mode="bilinear", align_corners=False)
    return F.pad(resized, (0, size - w, 0, size - h))[:, 0] > 0.5


def render_region(region: dict, image_size: tuple[int, int], config) -> np.ndarray:
    point_r = scaled_radius(config.point_radius, image_size, config.region_reference_size)
    if region["kind"] == "point":
        points = np.asarray(region["points"])[np.asarray(region["labels"]) == 1]
        return disc_mask(image_size, points, point_r)
    if region["kind"] == "box":
        return box_mask(image_size, region["box"])
    if region["kind"] == "scribble":
        return scribble_mask(image_size, region["scribble"],
                             scaled_radius(config.scribble_radius, image_size, config.region_reference_size))
    return np.asarray(region["mask"], dtype=bool)


def sample_items(sample: Sample, processor: HyperSegProcessor, frame: int = 0, explain: bool = True) -> Item:
    """The item for ``sample`` on image ``frame`` (image tasks: frame 0 only).

    Reasoning samples ask with the *explain* instruction and teach the explanation after the mask token; with
    ``explain=False`` they ask with the plain reasoning instruction, the one ``pipe.reason`` uses for the mask.
    """
    config = processor.config
    size = config.image_size
    image = sample.image if sample.image is not None else sample.frames[frame]
    prepared = processor.prepare_image(torch.from_numpy(np.ascontiguousarray(image)))
    masks = sample.masks if sample.frame_masks is None else sample.frame_masks[frame]
    labels = torch.as_tensor(sample.labels, dtype=torch.long)
    ids = torch.as_tensor(sample.instance_ids, dtype=torch.long)
    video = sample.frames is not None
    region_masks = None
    if sample.task in CLASS_TASKS:
        conversation = P.class_prompt(len(sample.class_names), CLASS_TASKS[sample.task], video=video)
        encoded = processor.encode(conversation, class_names=sample.class_names)
    elif sample.task in ("referring", "referring_video"):
        encoded = processor.encode(P.referring_prompt("referring"), expression=sample.expression)
    elif sample.task == "reasoning":
        conversation = (P.referring_prompt("reasoning_explain", explanation=sample.answer or "") if explain
                        else P.referring_prompt("reasoning"))
        encoded = processor.encode(conversation, expression=sample.expression)
    elif sample.task in ("interactive", "vos"):
        encoded = processor.encode(P.region_prompt(len(sample.regions), video=video), num_regions=len(sample.regions))
        first = sample.image if sample.image is not None else sample.frames[0]
        rendered = np.stack([render_region(r, first.shape[:2], config) for r in sample.regions])
        region_masks = _to_frame(rendered, prepared, size)
    else:
        raise ValueError(f"no batching rule for task {sample.task!r}")
    keep = masks.reshape(masks.shape[0], -1).any(1) if masks.shape[0] else np.zeros(0, bool)
    target = SegmentationTarget(masks=_to_frame(masks[keep], prepared, size), labels=labels[torch.from_numpy(keep)],
                                instance_ids=ids[torch.from_numpy(keep)])
    return Item(encoded, prepared, target, region_masks)


def collate(items: list[Item], processor: HyperSegProcessor) -> dict:
    """Items -> keyword arguments of ``HyperSegForSegmentation.forward`` (with labels and targets)."""
    batch = processor.collate([i.encoded for i in items])
    return dict(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"],
                class_spans=batch["class_spans"], refer_mask=batch["refer_mask"],
                pixel_values=torch.stack([i.prepared.pixel_values for i in items]),
                global_pixel_values=torch.stack([i.prepared.global_pixel_values for i in items]),
                region_masks=[i.region_masks for i in items] if any(i.region_masks is not None for i in items) else None,
                targets=[i.target for i in items])


def to_device(batch: dict, device) -> dict:
    moved = {}
    for key, value in batch.items():
        if torch.is_tensor(value):
            moved[key] = value.to(device)
        elif key == "region_masks" and value is not None:
            moved[key] = [None if v is None else v.to(device) for v in value]
        elif key == "targets":
            moved[key] = [SegmentationTarget(t.masks.to(device), t.labels.to(device),
                                             None if t.instance_ids is None else t.instance_ids.to(device))
                          for t in value]
        else:
            moved[key] = value
    return moved
