"""Add the colour relation scores to a checkpoint and fit their text head on its frozen LLM.

    python tools/fit_colour_relation.py assets/hyperseg-lite --output runs/lite-relation

Why (``hyperseg_lite/modeling/relation_scores.py``): "what shape is the same colour as the ring?" names no property
of its answer, and the one referring score finds it for about one question in six. The relation scores compare
the masks' own colours instead; only their text head is new: whether a question asks for the objects of another's
colour, and that anchor's category. It reads the LLM's hidden states of the question, so it is fitted here on
those of train-split reasoning questions and referring expressions (which state no relation), the rest of the
model fixed: the same loss a training run gives it (``training/attribute_supervision.py``), in minutes on a CPU.
Every other tensor is copied unchanged; ``decoder_config.colour_relation`` is set. Before writing, it reports the
head's accuracy on val questions, kept in ``colour_relation_fit.json`` beside the weights.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from hyperseg_lite import prompts as P
from hyperseg_lite.data.vocabulary import CATEGORIES
from hyperseg_lite.data.world import World
from hyperseg_lite.modeling.relation_scores import ColourRelationScores, relation_text_loss
from hyperseg_lite.pipeline import HyperSegPipeline
from hyperseg_lite.training.attribute_supervision import RELATION_FIT_REPORT_FILE

RESUME_STATE = ("optimizer.pt", "scheduler.pt", "trainer_state.json", "training_args.json")
PREFIX = "mask_decoder.colour_relation."


@torch.inference_mode()
def question_states(pipe: HyperSegPipeline, world: World, task: str, count: int) -> list[tuple]:
    """(hidden states of the expression's tokens (L, D), relation label, anchor label) for ``count`` samples."""
    examples = []
    for index in range(count):
        sample = world.sample(task, index)
        if not sample.expression:
            continue
        conversation = P.referring_prompt(task, pipe.predictor.wording)
        batch = pipe.processor.collate([pipe.processor.encode(conversation, expression=sample.expression)])
        _, hidden = pipe.model.segment(
            pipe.encode(sample.image).features,
            batch["input_ids"],
            batch["attention_mask"],
            class_spans=batch["class_spans"],
            refer_mask=batch["refer_mask"],
            aux_scores=False,
        )
        anchor = sample.colour_anchor_category
        tokens = hidden[0][batch["refer_mask"][0].bool()].float().clone()
        examples.append((tokens, int(anchor is not None), CATEGORIES.index(anchor) if anchor else -100))
    return examples


def padded(examples: list[tuple]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    length = max(tokens.shape[0] for tokens, _, _ in examples)
    hidden = torch.zeros(len(examples), length, examples[0][0].shape[1])
    mask = torch.zeros(len(examples), length, dtype=torch.bool)
    for row, (tokens, _, _) in enumerate(examples):
        hidden[row, : tokens.shape[0]] = tokens
        mask[row, : tokens.shape[0]] = True
    relation = torch.tensor([r for _, r, _ in examples])
    anchor = torch.tensor([a for _, _, a in examples])
    return hidden, mask, relation, anchor


@torch.no_grad()
def accuracy(head: ColourRelationScores, examples: list[tuple]) -> dict[str, float]:
    """Share of questions whose relation is read right, and of relation questions whose anchor is."""
    hidden, mask, relation, anchor = padded(examples)
    relation_logits, anchor_logits = head.split(head.text_logits(hidden, mask)[:, 0])
    stated = anchor >= 0
    return {
        "relation": float((relation_logits.argmax(-1) == relation).float().mean()),
        "anchor": float((anchor_logits[stated].argmax(-1) == anchor[stated]).float().mean()) if stated.any() else 0.0,
        "questions": len(examples),
        "relation_questions": int(stated.sum()),
    }


def fit(head: ColourRelationScores, examples: list[tuple], steps: int, seed: int) -> None:
    hidden, mask, relation, anchor = padded(examples)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(head.parameters(), lr=3e-3, weight_decay=1e-4)
    for _ in range(steps):
        rows = torch.randint(len(examples), (64,), generator=generator)
        loss = relation_text_loss(head.text_logits(hidden[rows], mask[rows]), relation[rows], anchor[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--questions", type=int, default=1200, help="train-split reasoning questions")
    parser.add_argument("--expressions", type=int, default=400, help="train-split referring expressions")
    parser.add_argument("--check", type=int, default=200, help="val reasoning questions of the report")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.output.resolve() == args.checkpoint.resolve():
        parser.error("--output must be another folder: the checkpoint is read, never overwritten")
    pipe = HyperSegPipeline.from_pretrained(args.checkpoint, precision="fp32", device_map="cpu")
    decoder = pipe.model.mask_decoder
    try:
        decoder.enable_colour_relation(pipe.model.config.text_config.hidden_size)
    except ValueError as error:
        parser.error(f"{args.checkpoint}: {error}")
    size = pipe.model.config.image_size
    train_world = World("train", args.seed, image_size=size)
    train = question_states(pipe, train_world, "reasoning", args.questions)
    train += question_states(pipe, train_world, "referring", args.expressions)
    check = question_states(pipe, World("val", args.seed, image_size=size), "reasoning", args.check)
    head = decoder.colour_relation.float()
    torch.manual_seed(args.seed)
    fit(head, train, args.steps, args.seed)
    report = {
        "checkpoint": str(args.checkpoint),
        "train_questions": len(train),
        "steps": args.steps,
        "seed": args.seed,
        "train": accuracy(head, train),
        "val": accuracy(head, check),
    }
    args.output.mkdir(parents=True, exist_ok=True)
    for path in args.checkpoint.iterdir():
        if path.is_file() and path.name not in RESUME_STATE and path.name != "model.safetensors":
            shutil.copy2(path, args.output / path.name)
    config = json.loads((args.output / "config.json").read_text())
    config["decoder_config"]["colour_relation"] = True
    (args.output / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    state = load_file(args.checkpoint / "model.safetensors")
    dtype = next(t.dtype for t in state.values() if t.is_floating_point())  # the checkpoint's precision
    for key, tensor in head.state_dict().items():
        state[PREFIX + key] = tensor.to(dtype).contiguous()
    save_file(state, args.output / "model.safetensors", metadata={"format": "pt"})
    (args.output / RELATION_FIT_REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n")
    print(f"fitted the colour relation text head on {len(train)} train questions and expressions")
    print(f"  val: relation read right {report['val']['relation']:.3f}, anchor {report['val']['anchor']:.3f}")
    print(f"wrote {args.output}")
    return report


if __name__ == "__main__":
    main()
