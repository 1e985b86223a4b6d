"""The model a run trains: built, initialised or resumed, with its new parts switched on and its frozen parts set.

Also the optimiser's parameter groups: parts that start untrained (the mask-shape embedding, the shape and colour
heads) learn at ``--new-parts-lr-scale`` times the rate of the rest.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from transformers import get_cosine_schedule_with_warmup

from ..configuration_hyperseg import HyperSegConfig
from ..data.vocabulary import CATEGORIES, COLOUR_NAMES
from ..loading import LoadedModel, build_random_model, load_model
from ..modeling.modeling_hyperseg import HyperSegForSegmentation
from ..pretrain_vision import encoders_of_run, load_encoders
from ..processing_hyperseg import HyperSegProcessor
from .checkpoints import checkpoint_step, last_checkpoint
from .colour_auxiliary import QueryColourAuxiliary, load_colour_head
from .shape_auxiliary import SHAPE_HEAD_FILE, MaskShapeAuxiliary, ShapeAuxiliary, load_shape_head

# the image encoders --freeze-vision holds fixed: everything that turns pixels into features before any prompt is
# read (the perceiver, which the temporal state feeds, and everything after the LLM keep learning)
VISION_MODULES = ("pyramid", "pixel_decoder", "global_vision")


def freeze_vision(model: torch.nn.Module) -> None:
    """Hold the image encoders fixed (no gradients, eval mode).

    Why: on a CPU most of a step's backward runs through them, while what the text-prompted tasks miss is in
    the language side (docs/research/); a frozen encoder lets a run spend its time on prompts. LISA likewise
    trains with its vision backbone frozen."""
    for name in VISION_MODULES:
        getattr(model, name).requires_grad_(False).eval()


def freeze_encoders(model: torch.nn.Module, train_pyramid: bool = False) -> None:
    """Hold the pretrained encoders fixed (no gradients, eval mode: BatchNorm keeps its stage-1 statistics);
    with ``train_pyramid`` the pyramid's weights keep learning (``--pyramid-lr-scale``), its statistics do not.

    Why: stage 1 (:mod:`hyperseg_lite.pretrain_vision`) trained them on the world's dense annotation with
    batches of 8+ images; stage 2's batches of 4 prompts would only blur them. What they feed (pixel decoder,
    projector, perceiver) keeps learning: the pixel decoder from stage 1's weights where it trained one, the rest
    from scratch."""
    model.pyramid.requires_grad_(train_pyramid).eval()
    model.global_vision.encoder.requires_grad_(False).eval()


def _as_dict(value) -> dict | None:
    return value.to_dict() if hasattr(value, "to_dict") else value


def with_encoders_of(loaded: LoadedModel, stage_one: Path) -> tuple[LoadedModel, list[str]]:
    """``--init`` weights rebuilt around a stage-1 run's encoders where their shapes differ (a two-stream pyramid
    under a one-stream model): every trained parameter whose name and shape still fit is kept; the others (what
    reads the pyramid's channels: the perceiver's and pixel decoder's input maps, the pyramid-pooled heads) start
    fresh, and their names are returned. Unchanged where the run's encoders are the model's own."""
    fields = encoders_of_run(stage_one)
    config = loaded.model.config
    if all(_as_dict(getattr(config, name)) == _as_dict(value) for name, value in fields.items()):
        return loaded, []
    new_config = HyperSegConfig.from_dict({**config.to_dict(), **fields})
    model = HyperSegForSegmentation(new_config).eval()
    own = model.state_dict()
    trained = loaded.model.state_dict()
    kept = {k: v for k, v in trained.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(kept, strict=False)
    fresh = sorted(k for k in own if k not in kept)
    processor = HyperSegProcessor(loaded.tokenizer, new_config)
    return replace(loaded, model=model, processor=processor), fresh


@dataclass
class TrainingSetup:
    """What the loop trains: the model, the optional shape and colour heads, and the step it starts from."""

    loaded: LoadedModel
    shape_aux: ShapeAuxiliary | None
    start_step: int
    checkpoint: Path | None  # the checkpoint resumed from, if any
    colour_aux: QueryColourAuxiliary | None = None


def prepare_model(args: argparse.Namespace, device) -> TrainingSetup:
    """Build (``--preset``), initialise (``--init``) or resume (``--resume``) the model and apply the run's switches.

    Raises ``ValueError`` with one sentence when the switches do not fit this model.
    """
    start, checkpoint = 0, None
    if args.resume is not None:
        checkpoint = last_checkpoint(args.resume)
        loaded = load_model(checkpoint, precision="fp32", device_map="cpu")
        start = checkpoint_step(checkpoint)
    elif args.init is not None:
        loaded = load_model(args.init, precision="fp32", device_map="cpu")
    else:
        encoders = encoders_of_run(args.init_vision) if getattr(args, "init_vision", None) is not None else {}
        loaded = build_random_model(args.preset, seed=args.seed, tokenizer=getattr(args, "tokenizer", None), **encoders)
    if getattr(args, "init_vision", None) is not None:
        loaded, fresh = with_encoders_of(loaded, args.init_vision)
        if fresh:
            print(f"--init-vision: {len(fresh)} parameters that read the new encoders start fresh", flush=True)
        load_encoders(loaded.model, args.init_vision)
    model = loaded.model
    presence_weight = getattr(args, "presence_loss_weight", None)
    if args.class_weight is not None:
        model.config.loss_class_weight = args.class_weight
    presence_query = getattr(args, "presence_query", None)
    if presence_weight is not None:
        model.config.loss_presence_weight = presence_weight
    if presence_query is not None:
        model.config.loss_presence_query = presence_query
    if args.class_weight is not None or presence_weight is not None or presence_query is not None:
        model.criterion = model.build_criterion()
    if getattr(args, "seg_concat", False):
        model.config.decoder_config.seg_concat = True
        model.mask_decoder.enable_seg_concat()
    if args.mask_shape_embedding:
        model.config.decoder_config.mask_shape_embedding = True
        model.mask_decoder.enable_mask_shape()
    if getattr(args, "mask_pooled_scores", None):
        model.config.decoder_config.mask_pooled_scores = True
        model.config.decoder_config.mask_pooled_features = args.mask_pooled_scores
        model.mask_decoder.enable_mask_pooled_scores(
            model.mask_pooled_dim(), args.mask_pooled_init_std, args.mask_pooled_scores
        )
    if getattr(args, "region_fine_features", False):
        model.enable_region_fine_features()
    for group, values in (("colour", COLOUR_NAMES), ("category", CATEGORIES)):
        source = getattr(args, f"{group}_attributes", None)
        if source:
            model.enable_attribute_scores(group, len(values), source)
    if getattr(args, "colour_relation", False):
        model.config.decoder_config.colour_relation = True
        model.mask_decoder.enable_colour_relation(model.config.text_config.hidden_size)
    if getattr(args, "category_ranking", False):
        model.config.decoder_config.category_ranking = True
        model.mask_decoder.enable_category_ranking(model.config.text_config.hidden_size)
    if getattr(args, "plurality", False):
        model.config.decoder_config.plurality = True
        model.mask_decoder.enable_plurality(model.config.text_config.hidden_size)
    if args.freeze_vision and args.shape_loss_weight > 0 and model.mask_decoder.mask_shape is None:
        raise ValueError(
            "--freeze-vision: the shape loss would train the frozen backbone (it has no mask-shape embedding)"
        )
    shape_aux = None
    if args.shape_loss_weight > 0:  # on the mask-shape embedding when the model has one, else on the backbone
        if model.mask_decoder.mask_shape is not None:
            shape_aux = MaskShapeAuxiliary(model.config.decoder_config.hidden_dim)
        else:
            shape_aux = ShapeAuxiliary(model.pyramid.channels)
        shape_aux = shape_aux.to(device)
        if checkpoint is not None:
            load_shape_head(shape_aux, checkpoint)
        elif args.continue_shape_head and not load_shape_head(shape_aux, args.init):
            raise ValueError(f"--continue-shape-head: no {SHAPE_HEAD_FILE} for this shape loss beside {args.init}")
    colour_aux = None
    adversary = getattr(args, "class_colour_adversary", 0.0) > 0
    if getattr(args, "colour_loss_weight", 0.0) > 0 or adversary:
        colour_aux = QueryColourAuxiliary(model.config.decoder_config.hidden_dim, adversarial=adversary).to(device)
        if checkpoint is not None:
            load_colour_head(colour_aux, checkpoint)
    model.train()
    if args.freeze_vision:
        freeze_vision(model)
    if getattr(args, "freeze_encoders", False):
        freeze_encoders(model, train_pyramid=getattr(args, "pyramid_lr_scale", 0.0) > 0)
    if getattr(args, "pixel_decoder_lr_scale", 1.0) == 0:
        model.pixel_decoder.requires_grad_(False)
    return TrainingSetup(loaded, shape_aux, start, checkpoint, colour_aux)


def build_optimizer(args: argparse.Namespace, setup: TrainingSetup):
    """AdamW over the trainable parameters (new parts at a higher rate) and its warm-up + cosine schedule.

    Returns ``(optimizer, scheduler, parameters)``; on resume both states are those of the checkpoint.
    """
    model = setup.loaded.model
    fresh = list(model.mask_decoder.mask_shape.parameters()) if args.mask_shape_embedding else []
    fresh += list(model.mask_decoder.mask_pooled.parameters()) if getattr(args, "mask_pooled_scores", None) else []
    for group, heads in model.mask_decoder.attribute_scores().items():
        fresh += list(heads.parameters()) if getattr(args, f"{group}_attributes", None) else []
    fresh += list(model.region_fine.parameters()) if getattr(args, "region_fine_features", False) else []
    fresh += list(setup.shape_aux.parameters()) if setup.shape_aux is not None else []
    fresh += list(setup.colour_aux.parameters()) if setup.colour_aux is not None else []
    pyramid_scale = getattr(args, "pyramid_lr_scale", 0.0)
    slow = list(model.pyramid.parameters()) if pyramid_scale > 0 else []
    decoder_scale = getattr(args, "pixel_decoder_lr_scale", 1.0)  # runs from before the switch: 1
    decoder = [p for p in model.pixel_decoder.parameters() if p.requires_grad] if decoder_scale != 1 else []
    own_rate = {id(p) for p in fresh + slow + decoder}
    trained = [p for p in model.parameters() if id(p) not in own_rate and p.requires_grad]
    groups = [{"params": trained}]
    if fresh:
        groups.append({"params": fresh, "lr": args.lr * args.new_parts_lr_scale})
    if slow:
        groups.append({"params": slow, "lr": args.lr * pyramid_scale})
    if decoder:
        groups.append({"params": decoder, "lr": args.lr * decoder_scale})
    saved = None
    if setup.checkpoint is not None:
        saved = torch.load(setup.checkpoint / "optimizer.pt", weights_only=True)
    released = None  # the pixel decoder held fixed until this resume (--pixel-decoder-lr-scale was 0): no state yet
    if decoder and saved is not None and len(saved["param_groups"]) == len(groups) - 1:
        released = groups.pop()
    optimizer = torch.optim.AdamW(groups, lr=args.lr, weight_decay=args.weight_decay)
    scheduler = get_cosine_schedule_with_warmup(optimizer, min(args.warmup, args.steps), args.steps)
    if saved is not None:
        optimizer.load_state_dict(saved)
        if (setup.checkpoint / "scheduler.pt").exists():
            scheduler.load_state_dict(torch.load(setup.checkpoint / "scheduler.pt", weights_only=True))
    if released is not None:  # joins at the schedule's current point, with a fresh AdamW state
        factor = scheduler.lr_lambdas[0](scheduler.last_epoch)
        optimizer.add_param_group({**released, "initial_lr": released["lr"], "lr": released["lr"] * factor})
        scheduler.base_lrs.append(released["lr"])
        scheduler.lr_lambdas.append(scheduler.lr_lambdas[0])
    return optimizer, scheduler, trained + fresh + slow + decoder
