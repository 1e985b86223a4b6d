"""Add the question heads (colour relation, category ranking, plurality) to a checkpoint and fit them on its
frozen LLM.

    python tools/fit_question_heads.py assets/hyperseg-lite --output runs/lite-questions
    python tools/fit_question_heads.py C --output OUT --heads colour_relation plurality

Why: two kinds of reasoning question name no property of their answer, and the one referring score, which scores
each mask token alone, answers them worst: "what shape is the same colour as the ring?" (the colour relation
scores, ``hyperseg_lite/modeling/relation_scores.py``) and "the object with the most corners" (the category
ranking scores, ``modeling/ranking_scores.py``). Both compare the mask tokens' own colours and categories, which the
attribute heads already name; only their text heads are new. The plurality head (``modeling/plurality_scores.py``)
reads whether a referring expression names several objects, so that only those are answered with the union of
their tokens. A text head reads the LLM's hidden states of the
question, so it is fitted here on those of train-split reasoning questions and referring expressions (which ask
neither; their no-target ones all from outside the world, which no head may read as its own), the rest of the
model fixed: the losses a training run gives them (``training/attribute_supervision.py``),
in minutes on a CPU. Every other tensor is copied unchanged; ``decoder_config.colour_relation`` /
``category_ranking`` are set. Before writing, it reports how often each head reads val questions right, kept in
``question_heads_fit.json`` beside the weights.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from hyperseg_lite import prompts as P
from hyperseg_lite.data.world import NO_TARGET_RATE, World
from hyperseg_lite.modeling.plurality_scores import plurality_text_loss
from hyperseg_lite.modeling.ranking_scores import ranking_text_loss
from hyperseg_lite.modeling.relation_scores import relation_text_loss
from hyperseg_lite.pipeline import HyperSegPipeline
from hyperseg_lite.training.attribute_supervision import (
    QUESTION_HEADS_REPORT_FILE,
    plurality_labels,
    ranking_labels,
    relation_labels,
)

RESUME_STATE = ("optimizer.pt", "scheduler.pt", "trainer_state.json", "training_args.json")
HEADS = ("colour_relation", "category_ranking", "plurality")


class Questions:
    """The expression tokens' hidden states (N, L, D), their mask (N, L), and the samples they came from."""

    def __init__(self, hidden: torch.Tensor, mask: torch.Tensor, samples: list) -> None:
        self.hidden, self.mask, self.samples = hidden, mask, samples

    def labels(self, head: str, rows: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        samples = self.samples if rows is None else [self.samples[int(r)] for r in rows]
        kinds = ["refer"] * len(samples)
        if head == "plurality":
            return (plurality_labels(samples, kinds),)
        return relation_labels(samples, kinds) if head == "colour_relation" else ranking_labels(samples, kinds)


@torch.inference_mode()
def question_states(pipe: HyperSegPipeline, world: World, task: str, count: int) -> Questions:
    """The LLM's hidden states of ``count`` samples' expressions, asked as the pipeline asks them."""
    states, samples = [], []
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
        states.append(hidden[0][batch["refer_mask"][0].bool()].float().clone())
        samples.append(sample)
    return padded(states, samples)


def padded(states: list[torch.Tensor], samples: list) -> Questions:
    length = max(tokens.shape[0] for tokens in states)
    hidden = torch.zeros(len(states), length, states[0].shape[1])
    mask = torch.zeros(len(states), length, dtype=torch.bool)
    for row, tokens in enumerate(states):
        hidden[row, : tokens.shape[0]] = tokens
        mask[row, : tokens.shape[0]] = True
    return Questions(hidden, mask, samples)


def joined(*parts: Questions) -> Questions:
    states = [q.hidden[row][q.mask[row]] for q in parts for row in range(len(q.samples))]
    return padded(states, [sample for q in parts for sample in q.samples])


def head_loss(head_name: str, module, questions: Questions, rows: torch.Tensor) -> torch.Tensor:
    logits = module.text_logits(questions.hidden[rows], questions.mask[rows])
    labels = questions.labels(head_name, rows)
    loss = {
        "colour_relation": relation_text_loss,
        "category_ranking": ranking_text_loss,
        "plurality": plurality_text_loss,
    }
    return loss[head_name](logits, *labels)


@torch.no_grad()
def accuracy(head_name: str, module, questions: Questions) -> dict[str, float]:
    """Share of questions whose gate is read right, and of the questions it applies to whose anchor (relation)
    or first-ranked present category (ranking) is; the plurality head is a gate alone (one object or several),
    read on the expressions that have one."""
    labels = questions.labels(head_name)
    if head_name == "plurality":
        logits, known = module.text_logits(questions.hidden, questions.mask)[:, 0], labels[0] >= 0
        right = (logits.argmax(-1) == labels[0])[known]
        several = int((labels[0] == 1).sum())
        return {"gate": float(right.float().mean()), "value": 0.0, "questions": int(known.sum()), "applies_to": several}
    gate_logits, values = module.split(module.text_logits(questions.hidden, questions.mask)[:, 0])
    gate, target = labels[0], labels[1]
    if head_name == "category_ranking":
        values = values.masked_fill(~labels[2], -1e4)  # ranked among the categories present
    stated = target >= 0
    return {
        "gate": float((gate_logits.argmax(-1) == gate).float().mean()),
        "value": float((values[stated].argmax(-1) == target[stated]).float().mean()) if stated.any() else 0.0,
        "questions": len(questions.samples),
        "applies_to": int(stated.sum()),
    }


def fit(head_name: str, module, questions: Questions, steps: int, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(module.parameters(), lr=3e-3, weight_decay=1e-4)
    for _ in range(steps):
        rows = torch.randint(len(questions.samples), (64,), generator=generator)
        loss = head_loss(head_name, module, questions, rows)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument(
        "--heads", nargs="+", choices=HEADS, default=["colour_relation"], help="the embedded model ships the relation"
    )
    parser.add_argument("--questions", type=int, default=600, help="train-split reasoning questions")
    parser.add_argument("--expressions", type=int, default=300, help="train-split referring expressions")
    parser.add_argument("--check", type=int, default=200, help="val reasoning questions of the report")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.output.resolve() == args.checkpoint.resolve():
        parser.error("--output must be another folder: the checkpoint is read, never overwritten")
    pipe = HyperSegPipeline.from_pretrained(args.checkpoint, precision="fp32", device_map="cpu")
    decoder, text_dim = pipe.model.mask_decoder, pipe.model.config.text_config.hidden_size
    try:
        for name in args.heads:
            getattr(decoder, f"enable_{name}")(text_dim)
    except ValueError as error:
        parser.error(f"{args.checkpoint}: {error}")
    size = pipe.model.config.image_size
    train_world = World("train", args.seed, image_size=size)
    # every no-target expression from outside the world ("a toothbrush"): text the heads must not read as theirs
    expressions = World("train", args.seed, image_size=size, out_of_world_rate=NO_TARGET_RATE)
    train = joined(
        question_states(pipe, train_world, "reasoning", args.questions),
        question_states(pipe, expressions, "referring", args.expressions),
    )
    val = World("val", args.seed, image_size=size)
    check = question_states(pipe, val, "reasoning", args.check)
    # the plurality head is checked on expressions: reasoning questions have no plurality label
    check_expressions = question_states(pipe, val, "referring", args.check) if "plurality" in args.heads else None
    report = {"checkpoint": str(args.checkpoint), "train_questions": len(train.samples), "steps": args.steps}
    report |= {"seed": args.seed, "heads": {}}
    torch.manual_seed(args.seed)
    for name in args.heads:
        module = getattr(decoder, name).float()
        fit(name, module, train, args.steps, args.seed)
        held_out = check_expressions if name == "plurality" else check
        report["heads"][name] = {"train": accuracy(name, module, train), "val": accuracy(name, module, held_out)}

    args.output.mkdir(parents=True, exist_ok=True)
    for path in args.checkpoint.iterdir():
        if path.is_file() and path.name not in RESUME_STATE and path.name != "model.safetensors":
            shutil.copy2(path, args.output / path.name)
    config = json.loads((args.output / "config.json").read_text())
    config["decoder_config"] |= dict.fromkeys(args.heads, True)
    (args.output / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    state = load_file(args.checkpoint / "model.safetensors")
    dtype = next(t.dtype for t in state.values() if t.is_floating_point())  # the checkpoint's precision
    for name in args.heads:
        for key, tensor in getattr(decoder, name).state_dict().items():
            state[f"mask_decoder.{name}.{key}"] = tensor.to(dtype).contiguous()
    save_file(state, args.output / "model.safetensors", metadata={"format": "pt"})
    earlier = args.checkpoint / QUESTION_HEADS_REPORT_FILE  # the fits of heads kept as they were stay reported
    if earlier.exists():
        kept = json.loads(earlier.read_text()).get("heads", {})
        report["heads"] = {name: fit for name, fit in kept.items() if name not in report["heads"]} | report["heads"]
    (args.output / QUESTION_HEADS_REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n")
    print(f"fitted {', '.join(args.heads)} on {len(train.samples)} train questions and expressions")
    for name, result in report["heads"].items():
        print(f"  {name}, val: gate read right {result['val']['gate']:.3f}, value {result['val']['value']:.3f}")
    print(f"wrote {args.output}")
    return report


if __name__ == "__main__":
    main()
