"""The command line of ``python -m hyperseg_lite.train``: its flags, their checks, and a run's stored switches.

Every switch that shapes a run (architecture parts, recipe, tasks, seed...) is saved in its checkpoint
(``training_args.json``), so ``--resume RUN`` needs nothing else. Flags given again on resume must match what
the run was started with, except those in ``RESUME_MAY_CHANGE``: how long, how often to save or log, how many
workers (they do not change what a step computes), the task weights and the pixel decoder's learning-rate scale.
A new value of either forks the run at its checkpoint's step: later steps draw the new cycle (the same steps a run
with those weights from the start would draw there) or train the pixel decoder at the new rate, and
``task_weight_phases`` / ``pixel_decoder_lr_scale_phases`` keep which value ran until which step, so the run can
be reproduced with ``--stop-at`` and a resume.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from ..data.world import TASKS
from ..tasks import PAPER_TASKS
from .checkpoints import TRAINING_ARGS_FILE, checkpoint_step, last_checkpoint
from .schedule import parse_task_weights

# flags a resumed run may set anew; every other stored switch must stay as the run began
RESUME_MAY_CHANGE = ("steps", "save_every", "log_every", "workers", "task_weights", "pixel_decoder_lr_scale")
# of those, the ones that fork the run when changed, and where the run keeps the values they had until then
PHASED = {"task_weights": "task_weight_phases", "pixel_decoder_lr_scale": "pixel_decoder_lr_scale_phases"}
# where a run is or this invocation ends (not what it is), and what is derived from other switches: never stored
NOT_STORED = ("output", "resume", "task_weight_map", "stop_at")


def build_parser(description: str | None = None, only_given: bool = False) -> argparse.ArgumentParser:
    """The training flags. ``only_given=True``: no defaults, so the parsed namespace holds only the flags typed."""
    parser = argparse.ArgumentParser(
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        argument_default=argparse.SUPPRESS if only_given else None,
    )

    def add(*flags, default=None, **kwargs):
        if not only_given:
            kwargs["default"] = default
        parser.add_argument(*flags, **kwargs)

    add("--preset", default="lite")
    add("--output", type=Path, help="the run's folder (log, TensorBoard events, checkpoint); with --resume: RUN")
    add("--resume", type=Path, help="continue the run in this folder with the switches it was started with")
    add("--init", type=Path, help="start from these weights (a checkpoint folder) with a fresh optimizer and schedule")
    add("--steps", type=int, default=1000, help="total steps of the run (on --resume: may be raised to go on)")
    add(
        "--stop-at",
        type=int,
        metavar="STEP",
        help="end this invocation after STEP with a checkpoint, the learning-rate schedule still set for --steps "
        "(go on with --resume RUN, for example with other --task-weights)",
    )
    add("--batch-size", type=int, default=4)
    add("--lr", type=float, default=3e-4)
    add("--warmup", type=int, default=100, help="linear warm-up steps before the cosine decay")
    add("--weight-decay", type=float, default=0.05)
    add(
        "--tasks",
        nargs="+",
        default=list(PAPER_TASKS),
        choices=TASKS,
        help="tasks to draw (default: HyperSeg's nine; add describe for class-free naming, as lite2 does)",
    )
    add(
        "--task-weights",
        nargs="*",
        default=[],
        metavar="TASK=N",
        help="draw TASK N times per round (default 1), e.g. referring=3 reasoning=3",
    )
    add(
        "--reasoning-prompts",
        choices=("explain", "both"),
        default="explain",
        help="reasoning samples ask to explain (explain), or half of them ask for the mask only (both)",
    )
    add(
        "--class-weight",
        type=float,
        help="weight of the prompt-score loss (loss_cls) and its matching cost; default: the checkpoint's config "
        "(2.0, Mask2Former's); saved with the run's config",
    )
    add(
        "--presence-loss-weight",
        type=float,
        help="weight of the prompt-presence loss (each prompt's best query score against whether anything "
        "answers it; trains referring prompts to refuse absent targets; not in HyperSeg); default: the "
        "checkpoint's config (0, off); saved with the run's config",
    )
    add(
        "--presence-query",
        choices=("best", "matched"),
        help="which queries the presence loss reads for a present prompt: 'best' (its best query, up) or "
        "'matched' (the queries matched to its objects up, its best other query down); default: the checkpoint's "
        "config ('best'); saved with the run's config",
    )
    add(
        "--seg-concat",
        action="store_true",
        default=False,
        help="turn on decoder_config.seg_concat, the release's other decoder path (the referring embedding "
        "joins the mask queries in every decoder layer); its positions start as the trained queries'",
    )
    add(
        "--mask-shape-embedding",
        action="store_true",
        default=False,
        help="turn on decoder_config.mask_shape_embedding (prompt scores also read each mask token's own mask "
        "outline; not in the release) and train it as a new part (later cycles from its checkpoints have it on)",
    )
    add(
        "--mask-pooled-scores",
        choices=("pixel_decoder", "pyramid"),
        default=None,
        help="turn on decoder_config.mask_pooled_scores (prompt scores also read the features under each mask "
        "token's own mask, averaged: the pixel decoder's mask_features or the pyramid's stride-4 and -8 stages; "
        "not in the release) and train it as a new part",
    )
    add(
        "--region-fine-features",
        action="store_true",
        default=False,
        help="turn on config.region_fine_features (a clicked point, box or scribble also averages the pixel "
        "decoder's stride-4 features inside it, not only the global tower's coarse grid; not in the release) and "
        "train it as a new part",
    )
    add(
        "--mask-pooled-init-std",
        type=float,
        default=0.0,
        help="with --mask-pooled-scores: the deviation its last layer starts with (0: at zero, no output changes "
        "until trained)",
    )
    add(
        "--new-parts-lr-scale",
        type=float,
        default=10.0,
        help="learning-rate multiplier for the new parts (mask-shape embedding, mask-pooled scores, shape head): "
        "they start untrained",
    )
    add(
        "--continue-shape-head",
        action="store_true",
        default=False,
        help="with --init and --shape-loss-weight: go on with the shape head saved beside the --init weights (as "
        "pretrain_shapes writes it) instead of a fresh one",
    )
    add(
        "--shape-loss-weight",
        type=float,
        default=0.0,
        help="weight of a training-only loss that teaches each object's shape category to the mask-shape embedding "
        "when the model has one, else to the backbone (hyperseg_lite/training/shape_auxiliary.py); 0: off",
    )
    add(
        "--colour-loss-weight",
        type=float,
        default=0.0,
        help="weight of a training-only loss that has the decoder state of each matched mask token name its "
        "object's colour, so the prompt scores can read colour words (hyperseg_lite/training/colour_auxiliary.py; "
        "not in HyperSeg); 0: off",
    )
    add(
        "--class-colour-adversary",
        type=float,
        default=0.0,
        help="weight of a training-only colour classifier that reads what the class scores read (each matched mask "
        "token's input of CLASS_proj) through a gradient reversal, so class prompts cannot lean on colour to rule "
        "shapes out (hyperseg_lite/training/colour_auxiliary.py; not in HyperSeg); 0: off",
    )
    add(
        "--colour-attributes",
        choices=("pyramid", "pixel_decoder"),
        default=None,
        help="turn on decoder_config.colour_attributes (each referring probability is multiplied by the probability "
        "that the mask has the colour the expression states: hyperseg_lite/modeling/attribute_scores.py; not in the "
        "release), its mask head reading the pyramid's stride-4 and -8 stages or the pixel decoder's "
        "mask_features under each mask, and train its two heads as a new part, each with its own loss",
    )
    add(
        "--colour-attribute-weight",
        type=float,
        default=1.0,
        help="with --colour-attributes: weight of the losses that teach its heads the mask's and the expression's "
        "colour (hyperseg_lite/training/attribute_supervision.py), the only losses that train them",
    )
    add(
        "--category-attributes",
        choices=("pyramid", "pixel_decoder", "shape_stream"),
        default=None,
        help="turn on decoder_config.category_attributes, the same for the shape category the expression states "
        "(its text head can also say 'a thing outside the world', which no mask has), its mask head reading the "
        "pyramid's stride-4 and -8 stages, the pixel decoder's mask_features, or a two-stream pyramid's shape "
        "channels of every stage (blind to colour) under each mask; on weights that have them from another source "
        "the text head is kept and the mask head starts fresh",
    )
    add(
        "--category-attribute-weight",
        type=float,
        default=1.0,
        help="with --category-attributes: weight of the losses that teach its heads the mask's and the "
        "expression's category",
    )
    add(
        "--colour-relation",
        action="store_true",
        default=False,
        help="turn on decoder_config.colour_relation: a question for the objects of another's colour ('the same "
        "colour as the ring') is answered by comparing the masks' colours (needs both attribute groups; "
        "hyperseg_lite/modeling/relation_scores.py)",
    )
    add(
        "--category-ranking",
        action="store_true",
        default=False,
        help="turn on decoder_config.category_ranking: a question that ranks objects by a fact of their category "
        "('the object with the most corners') picks the first-ranked category among the objects found (needs "
        "--category-attributes; hyperseg_lite/modeling/ranking_scores.py)",
    )
    add(
        "--plurality",
        action="store_true",
        default=False,
        help="turn on decoder_config.plurality: a head reads whether an expression names several objects, and only "
        "those are answered with the union of their tokens (hyperseg_lite/modeling/plurality_scores.py)",
    )
    add(
        "--freeze-vision",
        action="store_true",
        default=False,
        help="hold the image encoders (pyramid, pixel decoder, global tower) fixed and train the rest",
    )
    add(
        "--tokenizer",
        type=Path,
        help="a new run's tokenizer folder (lite2: assets/tokenizer-lite2, the subword one); default: byte-level",
    )
    add(
        "--init-vision",
        type=Path,
        help="a new run's image encoders from a stage-1 checkpoint (python -m hyperseg_lite.pretrain_vision), "
        "and its pixel decoder where stage 1 trained one (--pixel-decoder-weight); with --init they replace the "
        "encoders of those weights, whose LLM, projectors and mask decoder then learn to read the new ones",
    )
    add(
        "--freeze-encoders",
        action="store_true",
        default=False,
        help="hold the pyramid and the global tower's encoder fixed (as pretrained) and train everything after "
        "them, the pixel decoder and the global projector included",
    )
    add(
        "--pyramid-lr-scale",
        type=float,
        default=0.0,
        help="with --freeze-encoders: the pyramid's weights still train, at --lr times this, while its BatchNorm "
        "statistics stay those of stage 1 and the global tower stays fixed (0: the pyramid is fixed too)",
    )
    add(
        "--pixel-decoder-lr-scale",
        type=float,
        default=1.0,
        help="the pixel decoder trains at --lr times this (0: held fixed). Below 1 keeps what stage 1 taught it "
        "while the parts after it start from random and their first gradients are noise, as Mask2Former trains "
        "its pretrained backbone at 0.1 x. On --resume another value applies from the checkpoint's step on",
    )
    add(
        "--out-of-world-rate",
        type=float,
        default=0.0,
        help="share of referring samples asking for something outside the world (other nouns, languages, "
        "nonsense), to be answered with no mask; at most the no-target share 0.15 (lite2 recipe: 0.05)",
    )
    add(
        "--colour-contrast-rate",
        type=float,
        default=0.0,
        help="share of referring samples whose expression only the colour decides: a target beside an object of "
        "its category in another colour, or its category in a colour absent here (0: the world's own mix)",
    )
    add("--seed", type=int, default=0)
    add("--clip-frames", type=int, default=2, help="frames per training clip (video tasks)")
    add("--log-every", type=int, default=10, help="TensorBoard scalars every N steps (log.csv has every step)")
    add("--save-every", type=int, default=500)
    add(
        "--workers",
        type=int,
        default=max(0, min(8, (os.cpu_count() or 1) - 2)),
        help="DataLoader processes drawing the world (0: draw in the training process)",
    )
    return parser


def stored_switches(args: argparse.Namespace) -> dict:
    """The switches of a run as JSON-ready values (what ``training_args.json`` holds)."""
    return {
        key: str(value) if isinstance(value, Path) else value
        for key, value in vars(args).items()
        if key not in NOT_STORED
    }


def parse_arguments(argv: list[str] | None = None, description: str | None = None) -> argparse.Namespace:
    """Parse and check the flags; on ``--resume``, fill them in from the run's ``training_args.json``.

    Bad combinations exit with one sentence saying what to change (``parser.error``).
    """
    parser = build_parser(description)
    args = parser.parse_args(argv)
    if args.resume is not None and args.init is not None:
        parser.error("--resume continues a run; --init starts a new one from given weights: use one")
    if args.resume is not None:
        args = _resumed(parser, args, vars(build_parser(only_given=True).parse_args(argv)))
    elif args.output is None:
        parser.error("--output is required: the folder the new run writes its log and checkpoint to")
    elif (args.output / "log.csv").exists() or (args.output / "checkpoint").exists():
        # a new run would append its steps to the old log and overwrite the old checkpoint: refuse, keep both
        parser.error(
            f"--output {args.output} already holds a run: continue it with --resume {args.output}, "
            "or give the new run another folder"
        )
    if args.stop_at is not None and not 0 < args.stop_at < args.steps:
        parser.error(f"--stop-at must be between 0 and --steps {args.steps} (the run ends at --steps anyway)")
    try:
        args.task_weight_map = parse_task_weights(args.task_weights, args.tasks)
    except ValueError as error:
        parser.error(str(error))
    if args.class_weight is not None and args.class_weight <= 0:
        parser.error("--class-weight must be positive")
    if args.presence_loss_weight is not None and args.presence_loss_weight < 0:
        parser.error("--presence-loss-weight must be 0 (off) or positive")
    if args.shape_loss_weight < 0:
        parser.error("--shape-loss-weight must be 0 (off) or positive")
    if args.colour_loss_weight < 0:
        parser.error("--colour-loss-weight must be 0 (off) or positive")
    if args.class_colour_adversary < 0:
        parser.error("--class-colour-adversary must be 0 (off) or positive")
    if args.class_colour_adversary > 0 and args.colour_loss_weight > 0:
        parser.error("--class-colour-adversary and --colour-loss-weight pull the colour opposite ways: use one")
    if args.colour_attribute_weight <= 0:
        parser.error("--colour-attribute-weight must be positive (nothing else trains the colour attribute heads)")
    if args.category_attribute_weight <= 0:
        parser.error("--category-attribute-weight must be positive (nothing else trains the category attribute heads)")
    if args.resume is None and args.tokenizer is not None and args.init is not None:
        parser.error("--tokenizer sets up a new model from --preset; --init weights bring their own")
    if not 0 <= args.out_of_world_rate <= 0.15:
        parser.error("--out-of-world-rate must be between 0 and 0.15 (the share of no-target referring samples)")
    if not 0 <= args.colour_contrast_rate <= 1:
        parser.error("--colour-contrast-rate must be between 0 and 1")
    if args.pyramid_lr_scale < 0 or (args.pyramid_lr_scale > 0 and not args.freeze_encoders):
        parser.error("--pyramid-lr-scale goes with --freeze-encoders (without it the pyramid trains at --lr)")
    if args.pixel_decoder_lr_scale < 0:
        parser.error("--pixel-decoder-lr-scale must be 0 or more (0: the pixel decoder is held fixed)")
    if args.freeze_vision and args.pixel_decoder_lr_scale != 1:
        parser.error("--freeze-vision already holds the pixel decoder fixed: drop --pixel-decoder-lr-scale")
    if args.freeze_encoders and args.freeze_vision:
        parser.error("--freeze-vision already holds the encoders fixed (and the pixel decoder): give one of the two")
    if args.resume is None and args.continue_shape_head and (args.init is None or args.shape_loss_weight <= 0):
        parser.error("--continue-shape-head needs --init and --shape-loss-weight")
    return args


def _resumed(parser: argparse.ArgumentParser, args: argparse.Namespace, given: dict) -> argparse.Namespace:
    """``args`` of a resumed run: its stored switches, checked against the flags given again."""
    if args.output is None:
        args.output = args.resume
    elif args.output.resolve() != args.resume.resolve():
        parser.error(f"--resume {args.resume} continues that folder's run: drop --output or give the same folder")
    stored_file = last_checkpoint(args.resume) / TRAINING_ARGS_FILE
    if not stored_file.is_file():
        if not (args.resume / "checkpoint").exists():
            parser.error(f"--resume {args.resume}: no checkpoint there to continue (start it without --resume)")
        return args  # a run from before switches were stored: the flags given are the run's, as they always were
    stored = json.loads(stored_file.read_text())
    for key, value in given.items():
        if key in NOT_STORED or key in RESUME_MAY_CHANGE or key not in stored:
            continue
        was = stored[key]
        now = str(value) if isinstance(value, Path) else value
        if now != was and not (isinstance(was, (int, float)) and isinstance(now, (int, float)) and float(now) == was):
            flag = "--" + key.replace("_", "-")
            if isinstance(was, bool):
                change = f"{flag} was {'on' if was else 'off'} when this run began"
            else:
                change = f"{flag} {_show(now)} differs from the run's {_show(was)}"
            may_change = ", ".join("--" + k.replace("_", "-") for k in RESUME_MAY_CHANGE)
            parser.error(
                f"{change}: a resumed run keeps its switches (only {may_change} may change); "
                f"start a new run with --init {args.resume / 'checkpoint'} to change it"
            )
    for key, value in stored.items():
        if key in RESUME_MAY_CHANGE and key in given or key == "workers":  # workers: this machine's default
            continue
        setattr(args, key, Path(value) if key == "init" and value is not None else value)
    for key, phases in PHASED.items():
        was = stored.get(key, parser.get_default(key))
        if key in given and given[key] != was:
            phase = {"until_step": checkpoint_step(stored_file.parent), key: was}
            setattr(args, phases, [*stored.get(phases, []), phase])
    # the weights (and tokenizer) come from the run's checkpoint now
    args.init, args.continue_shape_head, args.init_vision, args.tokenizer = None, False, None, None
    return args


def _show(value) -> str:
    return " ".join(map(str, value)) if isinstance(value, list) else str(value)
