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
from ..tasks import get_task


@dataclass
class Item:
    """One prompt on one frame."""

    encoded: EncodedPrompt
    prepared: PreparedImage
    target: SegmentationTarget
    region_masks: torch.Tensor | None = None


def masks_to_frame(masks: np.ndarray, prepared: PreparedImage, size: int) -> torch.Tensor:
    """(n, H, W) target masks at the image's resolution -> (n, S, S) on the padded model frame."""
    if masks.shape[0] == 0:
        return torch.zeros((0, size, size), dtype=torch.bool)
    h, w = prepared.resized_size
    resized = F.interpolate(torch.from_numpy(masks).float()[:, None], size=(h, w), mode="bilinear", align_corners=False)
    return F.pad(resized, (0, size - w, 0, size - h))[:, 0] > 0.5


def region_spec(region: dict) -> dict:
    """A world sample's region ({"kind": ..., ...}) -> keyword arguments of ``HyperSegProcessor.draw_region``."""
    kind = region["kind"]
    if kind == "point":
        return {"points": region["points"], "point_labels": region["labels"]}
    if kind in ("box", "scribble", "mask"):
        return {kind: region[kind]}
    raise ValueError(f"unknown region kind {kind!r}")


def region_masks(regions: list[dict], prepared: PreparedImage, processor: HyperSegProcessor) -> torch.Tensor:
    """The regions on the model frame, rendered by the processor exactly as the pipeline renders a user's
    prompts (a region thinner than an input pixel keeps the pixels it touches instead of vanishing)."""
    return torch.stack([processor.region_mask(prepared, **region_spec(r)) for r in regions])


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
    rendered = None
    task = get_task(sample.task)
    if task.family == "class":
        conversation = P.class_prompt(len(sample.class_names), task.class_mode, video=video)
        encoded = processor.encode(conversation, class_names=sample.class_names)
    elif task.family == "referring":
        encoded = processor.encode(P.referring_prompt("referring"), expression=sample.expression)
    elif task.family == "reasoning":
        conversation = (
            P.referring_prompt("reasoning_explain", explanation=sample.answer or "")
            if explain
            else P.referring_prompt("reasoning")
        )
        encoded = processor.encode(conversation, expression=sample.expression)
    elif task.family == "region":
        encoded = processor.encode(P.region_prompt(len(sample.regions), video=video), num_regions=len(sample.regions))
        rendered = region_masks(sample.regions, prepared, processor)
    elif task.family == "describe":  # text only: the answer names the classes present
        encoded = processor.encode(P.describe_prompt(answer=sample.answer))
    else:
        raise ValueError(f"no batching rule for task {sample.task!r}")
    keep = masks.reshape(masks.shape[0], -1).any(1) if masks.shape[0] else np.zeros(0, bool)
    target = SegmentationTarget(
        masks=masks_to_frame(masks[keep], prepared, size),
        labels=labels[torch.from_numpy(keep)],
        instance_ids=ids[torch.from_numpy(keep)],
    )
    return Item(encoded, prepared, target, rendered)


def collate(items: list[Item], processor: HyperSegProcessor) -> dict:
    """Items -> keyword arguments of ``HyperSegForSegmentation.forward`` (with labels and targets)."""
    batch = processor.collate([i.encoded for i in items])
    return dict(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        labels=batch["labels"],
        class_spans=batch["class_spans"],
        refer_mask=batch["refer_mask"],
        pixel_values=torch.stack([i.prepared.pixel_values for i in items]),
        global_pixel_values=torch.stack([i.prepared.global_pixel_values for i in items]),
        region_masks=[i.region_masks for i in items] if any(i.region_masks is not None for i in items) else None,
        targets=[i.target for i in items],
    )


def to_device(batch: dict, device) -> dict:
    moved = {}
    for key, value in batch.items():
        if torch.is_tensor(value):
            moved[key] = value.to(device)
        elif key == "region_masks" and value is not None:
            moved[key] = [None if v is None else v.to(device) for v in value]
        elif key == "targets":
            moved[key] = [
                SegmentationTarget(
                    t.masks.to(device),
                    t.labels.to(device),
                    None if t.instance_ids is None else t.instance_ids.to(device),
                )
                for t in value
            ]
        else:
            moved[key] = value
    return moved
