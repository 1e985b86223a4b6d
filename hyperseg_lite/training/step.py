"""One training step: the loss of one batch of one task (two frames for video tasks)."""

from __future__ import annotations

import torch

from ..loading import LoadedModel
from .attribute_supervision import attribute_losses
from .batching import collate, sample_items, to_device
from .colour_auxiliary import QueryColourAuxiliary, class_score_inputs, target_colours
from .shape_auxiliary import MaskShapeAuxiliary, ShapeAuxiliary, object_categories


def training_step(
    loaded: LoadedModel,
    samples: list,
    device,
    reasoning_prompts: str = "explain",
    shape_aux: ShapeAuxiliary | None = None,
    shape_weight: float = 0.0,
    colour_aux: QueryColourAuxiliary | None = None,
    colour_weight: float = 0.0,
    attribute_weights: dict[str, float] | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss of one batch of one task (two frames for video tasks), and its parts for the log.

    ``reasoning_prompts="both"``: every second reasoning sample of the batch asks with the plain reasoning
    instruction (mask only), the others with the explain instruction (mask + explanation), so the mask learnt
    for the instruction ``pipe.reason`` sends is trained too; ``"explain"`` (the embedded model's recipe so far)
    asks every one to explain.

    ``shape_aux`` (with ``shape_weight`` > 0): adds the shape-classification loss on the objects of class-prompt
    samples (:mod:`~hyperseg_lite.training.shape_auxiliary`), logged as ``loss_shape``. ``colour_aux`` (with
    ``colour_weight`` > 0): adds the colour loss on the decoder state of every matched mask token
    (:mod:`~hyperseg_lite.training.colour_auxiliary`), logged as ``loss_colour``; an adversarial ``colour_aux``
    reads the class scores' input instead, on batches with class prompts only. ``attribute_weights``: per attribute
    group of the model's attribute scores ("colour", "category") the weight of its two head losses
    (:mod:`~hyperseg_lite.training.attribute_supervision`), logged as ``loss_<group>_mask`` / ``loss_<group>_text``.
    """
    model, processor = loaded.model, loaded.processor
    frames = (0, 1) if samples[0].frames is not None else (0,)
    total, parts, previous, previous_targets, state = 0.0, {}, None, None, None
    for frame in frames:
        items = [
            sample_items(s, processor, frame, explain=reasoning_prompts == "explain" or i % 2 == 1)
            for i, s in enumerate(samples)
        ]
        batch = to_device(collate(items, processor), device)
        shape_loss = None
        adversary = colour_aux is not None and colour_weight > 0 and colour_aux.adversarial
        with class_score_inputs(model.mask_decoder, enabled=adversary) as class_inputs:
            if shape_aux is None or shape_weight <= 0:
                out = model(**batch, temporal_state=state)
            elif isinstance(shape_aux, MaskShapeAuxiliary):
                out = model(**batch, temporal_state=state)
                shape_loss = shape_aux.loss(
                    model.mask_decoder.mask_shape,
                    tuple(out.pred_masks.shape[-2:]),
                    batch["targets"],
                    _categories(samples, batch["targets"]),
                )
            else:
                with shape_aux.capture(model.pyramid) as seen:
                    out = model(**batch, temporal_state=state)
                shape_loss = shape_aux.loss(seen[-1], batch["targets"], _categories(samples, batch["targets"]))
        if shape_loss is not None:
            total = total + shape_weight * shape_loss
            parts["loss_shape"] = parts.get("loss_shape", 0.0) + float(shape_loss.detach())
        read = (class_inputs[-1] if class_inputs else None) if adversary else out.query_states
        if colour_aux is not None and colour_weight > 0 and out.matched_indices is not None and read is not None:
            colours = [
                target_colours(sample, target, pixels, model.config)
                for sample, target, pixels in zip(samples, batch["targets"], batch["pixel_values"])
            ]
            colour_loss = colour_aux.loss(read, out.matched_indices, colours)
            if colour_loss is not None:
                key = "loss_colour_adversary" if adversary else "loss_colour"
                total = total + colour_weight * colour_loss
                parts[key] = parts.get(key, 0.0) + float(colour_loss.detach())
        if model.mask_decoder.attribute_scores() or model.mask_decoder.plurality is not None:
            for key, value in attribute_losses(out, samples, batch, model.config).items():
                group = key.removeprefix("loss_").rsplit("_", 1)[0]  # loss_<group>_mask / loss_<group>_text
                weight = (attribute_weights or {}).get(group, 0.0)
                if weight > 0:
                    total = total + weight * value
                    parts[key] = parts.get(key, 0.0) + float(value.detach())
        total = total + out.loss
        for key, value in out.loss_dict.items():
            parts[key] = parts.get(key, 0.0) + float(value.detach())
        if previous is not None:
            association = model.instance_association_loss(previous, out, previous_targets, batch["targets"])
            total = total + association
            parts["loss_ins"] = float(association.detach())
        previous, previous_targets, state = out, batch["targets"], out.temporal_state
    return total, parts


def _categories(samples: list, targets: list) -> list[torch.Tensor]:
    return [object_categories(sample.class_names, target) for sample, target in zip(samples, targets)]
