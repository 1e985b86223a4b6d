"""End-to-end parity of the class-name prompt path (semantic / instance / panoptic) with the official HyperSeg code.

    python tools/official_e2e_parity_classes.py --official-repo /path/to/HyperSeg --official-python venv438/bin/python

The companion of ``tools/official_e2e_parity.py`` (the referring path), run the same way: stage 1, in an
interpreter with transformers 4.38.2, builds the release's ``HyperSeg`` from its own mask config with a small Phi /
SigLIP, perturbs and saves it with the release's ``save_pretrained``, and runs its ``eval_seg`` on a class-list
prompt (``class_name_ids`` / ``cls_indices`` / ``class_name_embedding_indices``, the PSALM-style inputs the
release's class path reads), capturing intermediate tensors with forward hooks up to the predictor. Stage 2 loads
the saved folder with ``load_model`` (official layout detected, converted) and compares our ``encode_images`` +
``segment`` on the same tensors: LLM hidden states, mask queries, the projected class-name embeddings, masks and
class logits, and the best query per class.

``--task`` picks the prompt's instruction and the release's ``SEG_TASK`` (panoptic, the default, semantic or
instance; up to the predictor the release computes the same for the three, its flags only steer post-processing).
The prompt is built by our processor (``class_prompt(3, task)`` over three names) and collapsed to the
release's form by :func:`to_official` (one ``<cls>`` id per class, its tokens + ``[SEG]`` in ``class_name_ids``,
one id for each of ``<image>``, ``<temporal>`` and ``<seg>``); :func:`from_official` expands it back exactly as
the release's ``concat_image_seg_cls_embeds`` places the embeddings (``tests/test_convert.py`` checks the round
trip). The release ships no class-prompt dataset class for evaluation (it evaluates RES, ReasonSeg and ReasonVOS
only), so unlike the referring run, the prompt ids are not built by release code.

Needs a checkout of congvvc/HyperSeg (run against commit 5cfcf52; figures in docs/converter.md). The class scores
are the predictor's ``pred_class_name_logits`` (``pred_SEG_logits`` / ``pred_region_logits`` are the other prompt
kinds'). If the release's ``eval_seg`` takes other argument names than these, stage 1 prints its signature and stops.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from official_e2e_parity import PHI, SIGLIP, build_inputs, install_stand_ins  # noqa: E402  (the referring run's parts)

CLASS_NAMES = ["red car", "road", "person"]
STUFF = {"road"}
IMAGE, SEG, CLS, TEMPORAL = -200, -201, -202, -205


# ---------------------------------------------------------------------- the prompt in both forms
def to_official(input_ids: torch.Tensor, class_spans: torch.Tensor) -> dict[str, torch.Tensor]:
    """Our expanded ids (one position per embedding, class names as their tokens) -> the release's inputs."""
    ids, names, owners = [], [], []
    previous_span, previous_id = 0, None
    for token, span in zip(input_ids.tolist(), class_spans.tolist()):
        if span:
            if span != previous_span:
                ids.append(CLS)
            names.append(token)
            owners.append(span - 1)
        elif token in (IMAGE, SEG, TEMPORAL):
            if token != previous_id:
                ids.append(token)
        else:
            ids.append(token)
        previous_span, previous_id = span, token
    official = torch.tensor(ids)
    return {
        "input_ids": official,
        "class_name_ids": torch.tensor(names),
        "cls_indices": torch.tensor(owners),
        "class_name_embedding_indices": (official == CLS).long(),
    }


def from_official(official: dict[str, torch.Tensor], counts: dict[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """The release's inputs -> our expanded ids and class spans (``counts``: positions per placeholder id)."""
    ids, spans = [], []
    names, owners = official["class_name_ids"].tolist(), official["cls_indices"].tolist()
    next_class = 0
    for token in official["input_ids"].tolist():
        if token == CLS:
            run = [n for n, o in zip(names, owners) if o == next_class]
            ids += run
            spans += [next_class + 1] * len(run)
            next_class += 1
        else:
            ids += [token] * counts.get(token, 1)
            spans += [0] * counts.get(token, 1)
    return torch.tensor(ids), torch.tensor(spans)


def our_prompt(processor, task: str = "panoptic"):
    from hyperseg_lite.prompts import class_prompt

    return processor.encode(class_prompt(len(CLASS_NAMES), task), class_names=CLASS_NAMES)


# ---------------------------------------------------------------------- stage 1: the official code
def run_official(repo: Path, work: Path, vocab: int, task: str) -> None:
    import transformers  # noqa: F401
    import transformers.models.phi.modeling_phi  # noqa: F401
    import transformers.models.siglip.modeling_siglip  # noqa: F401

    install_stand_ins()
    sys.path.insert(0, str(repo))
    os.chdir(repo / "hyperseg")
    from fvcore.common.config import CfgNode
    from hyperseg.model.language_model.llava_phi import HyperSeg
    from hyperseg.model.mask_decoder.mask_config.config import Config
    from hyperseg.model.mipha.model.language_model.configuration_mipha import MiphaPhiConfig

    yaml = repo / "hyperseg/model/mask_decoder/mask_config/maskformer2_swin_base_384_bs16_50ep.yaml"
    cfg = CfgNode.load_yaml_with_base(str(yaml), allow_unsafe=True)
    cfg.update(Config.fromfile(str(yaml)).__dict__.items())
    cfg = Config(cfg)
    cfg.MODEL.MASK_FORMER.SEG_TASK = task
    config = MiphaPhiConfig(
        vision_config={
            "vision_tower": dict(SIGLIP),
            "mm_projector": {
                "mm_projector_type": "mlp2x_gelu",
                "mm_hidden_size": SIGLIP["hidden_size"],
                "hidden_size": PHI["hidden_size"],
            },
        },
        vocab_size=vocab,
        **PHI,
    )
    config.mm_vision_tower = SIGLIP["vision_model_name_or_path"]
    config.swin_type, config.mask_decode_train, config.architectures = "base", True, ["HyperSeg"]
    torch.manual_seed(0)
    model = HyperSeg(config, mask_decoder_cfg=cfg)
    with torch.no_grad():
        gen = torch.Generator().manual_seed(1)
        for p in model.parameters():
            noise = torch.randn(p.shape, generator=gen)
            p.add_(
                0.05 * noise if p.ndim == 1 or torch.all(p == p.flatten()[0]) else 0.2 * p.std().clamp(min=1e-3) * noise
            )
    model.eval()
    model.save_pretrained(work / "official", safe_serialization=True, max_shard_size="200MB")

    inputs = torch.load(work / "inputs.pt")
    prompt = torch.load(work / "official_prompt.pt")
    captured: dict[str, torch.Tensor] = {}
    inner = model.get_model()
    inner.register_forward_hook(
        lambda m, a, out: captured.update({"llm_hidden": out.last_hidden_state.detach().clone()})
    )
    model.seg_query_projector.register_forward_hook(
        lambda m, a, out: captured.update({"mask_queries": out.detach().clone()})
    )
    model.class_name_projector.register_forward_hook(
        lambda m, a, out: captured.update({"class_names": out.detach().clone()})
    )

    class Stop(Exception):
        pass

    def stop(_module, _args, output):
        captured["pred_masks"] = output["pred_masks"].detach().clone()
        captured["class_logits"] = output["pred_class_name_logits"].detach().clone()  # the release's key
        raise Stop

    model.predictor.register_forward_hook(stop)
    ids = prompt["input_ids"][None]
    kwargs = dict(
        input_ids=ids,
        attention_mask=torch.ones_like(ids, dtype=torch.bool),
        images=inputs["pixel_values"][:1],
        images_clip=inputs["global_pixel_values"][:1],
        seg_info=[{}],
        class_name_embedding_indices=prompt["class_name_embedding_indices"][None],
        class_name_ids=prompt["class_name_ids"][None],
        cls_indices=prompt["cls_indices"][None],
        is_thing_list=[name not in STUFF for name in CLASS_NAMES],
    )
    accepted = inspect.signature(model.eval_seg).parameters
    unknown = [k for k in kwargs if k not in accepted and not any(p.kind == p.VAR_KEYWORD for p in accepted.values())]
    if unknown:
        raise SystemExit(
            f"the release's eval_seg takes {list(accepted)}; this script passes {unknown}: adapt run_official"
        )
    with torch.no_grad():
        try:
            model.eval_seg(**kwargs)
        except Stop:
            pass
    torch.save({k: v.float() for k, v in captured.items()}, work / "official_outputs.pt")
    print(f"official stage: {len(captured)} tensors captured")


# ---------------------------------------------------------------------- stage 2: ours
def compare(work: Path, tolerance: float, task: str) -> int:
    from hyperseg_lite import load_model

    loaded = load_model(str(work / "official"), precision="fp32")
    model = loaded.model
    theirs = torch.load(work / "official_outputs.pt")
    inputs = torch.load(work / "inputs.pt")
    encoded = our_prompt(loaded.processor, task)
    ids, spans = encoded.input_ids[None], encoded.class_spans[None]
    with torch.no_grad():
        features = model.encode_images(inputs["pixel_values"][:1], inputs["global_pixel_values"][:1])
        out, hidden = model.segment(features, ids, torch.ones_like(ids), class_spans=spans)
        prompts = model.entity_recognition(hidden, ids, spans, None, model.num_queries)
    ours = {
        "llm_hidden": hidden,
        "mask_queries": prompts.mask_queries,
        "class_names": prompts.classes,
        "pred_masks": out.pred_masks,
        "class_logits": out.prompt_logits[..., : len(CLASS_NAMES)],
    }
    worst = 0.0
    print("| output | shape | max abs diff | max abs value | relative |\n|---|---|---|---|---|")
    for name, theirs_value in theirs.items():
        if name not in ours:
            print(f"| {name} | {tuple(theirs_value.shape)} | (not compared) | | |")
            continue
        a, b = ours[name].float(), theirs_value.float()
        if a.shape != b.shape and a.numel() == b.numel():  # e.g. (1, K, D) vs (K, D): the same values
            a = a.reshape(b.shape)
        if a.shape != b.shape:
            print(f"| {name} | ours {tuple(a.shape)} vs {tuple(b.shape)} | SHAPE MISMATCH | | |")
            worst = float("inf")
            continue
        diff, scale = (a - b).abs().max().item(), b.abs().max().item()
        worst = max(worst, diff / max(scale, 1e-12))
        print(f"| {name} | {tuple(b.shape)} | {diff:.2e} | {scale:.2e} | {diff / max(scale, 1e-12):.1e} |")
    picks = [ours["class_logits"][0].argmax(0).tolist(), theirs["class_logits"][0].argmax(0).tolist()]
    print(f"best query per class: ours {picks[0]}, official {picks[1]}")
    labels = [ours["class_logits"][0].argmax(1), theirs["class_logits"][0].argmax(1)]
    disagree = int((labels[0] != labels[1]).sum())
    print(f"best class per query: {disagree} of {labels[0].numel()} queries differ")
    worst = worst if picks[0] == picks[1] and disagree == 0 else float("inf")
    print(f"\nworst relative difference: {worst:.2e} (tolerance {tolerance:.0e})")
    return 0 if worst <= tolerance else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--official-repo", type=Path, required=True, help="checkout of congvvc/HyperSeg")
    parser.add_argument("--official-python", default=None, help="interpreter with transformers 4.38.2 (stage 1)")
    parser.add_argument("--work", type=Path, default=Path("parity_e2e_classes"))
    parser.add_argument("--tolerance", type=float, default=1e-3)
    parser.add_argument("--task", default="panoptic", choices=["panoptic", "semantic", "instance"])
    parser.add_argument("--stage", default="both", choices=["both", "official"], help=argparse.SUPPRESS)
    parser.add_argument("--vocab", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    work = args.work.resolve()
    if args.stage == "official":
        run_official(args.official_repo.resolve(), work, args.vocab, args.task)
        return
    if not args.official_repo.is_dir():
        parser.error(f"{args.official_repo} is not a checkout of congvvc/HyperSeg")
    if not args.official_python:
        parser.error("--official-python is required (an interpreter with transformers 4.38.2)")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from hyperseg_lite import HyperSegConfig
    from hyperseg_lite.processing_hyperseg import HyperSegProcessor
    from hyperseg_lite.tokenization import build_byte_tokenizer

    work.mkdir(parents=True, exist_ok=True)
    os.environ["HF_HOME"] = str(work / "hf_home")
    shutil.rmtree(work / "hf_home", ignore_errors=True)
    tokenizer = build_byte_tokenizer()
    config = HyperSegConfig.from_preset("3b", seg_token_id=tokenizer.convert_tokens_to_ids("[SEG]"))
    encoded = our_prompt(HyperSegProcessor(tokenizer, config), args.task)
    torch.save(to_official(encoded.input_ids, encoded.class_spans), work / "official_prompt.pt")
    build_inputs(work)
    subprocess.run(
        [
            args.official_python,
            str(Path(__file__).resolve()),
            "--stage",
            "official",
            "--official-repo",
            str(args.official_repo.resolve()),
            "--work",
            str(work),
            "--vocab",
            str(len(tokenizer)),
            "--task",
            args.task,
        ],
        check=True,
        env={**os.environ, "PYTHONPATH": ""},
    )
    tokenizer.save_pretrained(work / "official")
    (work / "official" / "added_tokens.json").write_text(
        json.dumps({"[SEG]": tokenizer.convert_tokens_to_ids("[SEG]")})
    )
    sys.exit(compare(work, args.tolerance, args.task))


if __name__ == "__main__":
    main()
