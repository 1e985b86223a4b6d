"""End-to-end parity with the official HyperSeg code: the release's own ``HyperSeg.eval_seg`` under transformers 4.38
against our converted model under transformers 5, on the same weights and the same referring query (two video frames).

    python -m venv --system-site-packages /path/venv438
    /path/venv438/bin/pip install transformers==4.38.2 einops addict fvcore
    git clone https://github.com/congvvc/HyperSeg /path/to/HyperSeg               # on a machine with network
    python tools/official_e2e_parity.py --official-repo /path/to/HyperSeg --official-python /path/venv438/bin/python

Where ``tools/official_parity.py`` compares the mask-side modules one by one in one process, this script checks what
that one cannot: the prompt ids (built by the release's own ``RefCOCO_dataset_test`` and compared with our
processor's), the LLM and SigLIP as transformers 4.38 (the version the release was saved with) computes them, the
release's prompt assembly (``prepare_inputs_labels_for_multimodal``), pooling of the ``<refer>`` span, query gathering,
projectors, the FVP glue and the video hand-over of latents, plus the checkpoint as the release's own
``save_pretrained`` writes it (config format included), read back by ``hyperseg_lite.convert``.

Stage 1 runs in the official interpreter (``--stage official``): it imports the release's modules from the checkout
(nothing of it is copied here; detectron2 / torchvision / timm / the compiled deformable op are replaced by inert
stand-ins that the inference path never calls, or that the release itself falls back from), builds ``HyperSeg`` with
the release's mask config (``maskformer2_swin_base_384_bs16_50ep.yaml``: Swin-B, 100 queries, 9 decoder layers, FVP
128 x 512) and a small Phi / SigLIP (the LLM width does not change the code path), perturbs every parameter, saves it
with ``save_pretrained``, runs ``eval_seg`` for two frames (``use_temporal_query=True``, as ``eval_ReasonVOS.py``) and
stores inputs and intermediate outputs (captured by forward hooks; the run stops after the predictor, before
detectron2's post-processing). Stage 2 (this interpreter) loads that folder with ``load_model`` (official layout
detected, converted) and runs ``encode_images`` + ``segment`` on the same tensors, then prints a table of max abs
differences. Exit status 1 when a difference exceeds the tolerance.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import torch

# small LLM / SigLIP (the release's mask side is built at full size from its yaml)
PHI = dict(
    hidden_size=128,
    intermediate_size=256,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=4,
    partial_rotary_factor=0.4,
    layer_norm_eps=1e-5,
    hidden_act="gelu_new",
    max_position_embeddings=2048,
    rope_theta=10000.0,
    tie_word_embeddings=False,
)
SIGLIP = dict(
    hidden_size=96,
    intermediate_size=192,
    num_hidden_layers=3,
    num_attention_heads=4,
    image_size=384,
    patch_size=14,
    hidden_act="gelu_pytorch_tanh",
    layer_norm_eps=1e-6,
    mm_vision_select_layer=-2,
    mm_vision_select_feature="patch",
    vision_model_name_or_path="google/siglip-so400m-patch14-384",
)
EXPRESSION = "the small red car on the left"  # the release appends "." (RefCOCO_dataset_test)
IMAGE, SEG, REFER, TEMPORAL = -200, -201, -204, -205


# ====================================================================== stage 1: the official code (transformers 4.38)
def _stub_module(name: str, **attrs) -> types.ModuleType:
    import importlib.machinery

    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)
    module.__dict__.update(attrs)
    sys.modules[name] = module
    return module


def install_stand_ins() -> None:
    """Inert stand-ins for imports the inference path does not use (datasets mappers, post-processing)."""
    import importlib.abc
    import importlib.machinery
    from unittest import mock

    from torch import nn

    class _Mocked(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        roots = ("detectron2", "torchvision")

        def find_spec(self, fullname, path, target=None):
            if fullname.split(".")[0] in self.roots:
                return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
            return None

        def create_module(self, spec):
            module = types.ModuleType(spec.name)
            module.__path__ = []
            module.__getattr__ = lambda attr: mock.MagicMock(name=f"{spec.name}.{attr}")
            return module

        def exec_module(self, module):
            pass

    sys.meta_path.insert(0, _Mocked())
    _stub_module("detectron2.config", configurable=lambda f: f)  # mappers' __init__(self, cfg) stays callable
    _stub_module("timm")
    _stub_module("timm.models")
    _stub_module(
        "timm.models.layers",
        DropPath=lambda p=0.0: nn.Identity(),
        to_2tuple=lambda x: tuple(x) if isinstance(x, (tuple, list)) else (x, x),
        trunc_normal_=lambda t, std=1.0, **_: nn.init.trunc_normal_(t, std=std),
    )
    _stub_module("MultiScaleDeformableAttention")  # empty: the release falls back to ms_deform_attn_core_pytorch


class _StopAfterPredictor(Exception):
    pass


def official_prompt(tokenizer_dir: Path, seg_id: int) -> dict[str, torch.Tensor]:
    """The referring prompt exactly as the release's ``RefCOCO_dataset_test.__getitem__`` builds it."""
    from hyperseg.eval.eval_dataset import eval_datasets
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=str(tokenizer_dir / "tokenizer.json"), eos_token="<|endoftext|>", pad_token="<|endoftext|>"
    )
    tokenizer.add_special_tokens({"additional_special_tokens": ["[SEG]"]})
    assert tokenizer.convert_tokens_to_ids("[SEG]") == seg_id
    mapper = types.SimpleNamespace(preprocess=lambda data, mask_format=None: data)  # images are given separately
    data_args = types.SimpleNamespace(
        refcoco_image_folder="", image_processor={"instance": mapper}, sum_ref_pred_answer=False
    )
    dataset = eval_datasets.RefCOCO_dataset_test.__new__(eval_datasets.RefCOCO_dataset_test)
    dataset.data = [
        {
            "image_info": {"file_name": "x.jpg", "height": 1024, "width": 1024},
            "new_img_id": 0,
            "anns": [],
            "instruction": [{"sent": EXPRESSION}],
        }
    ]
    dataset.tokenizer, dataset.data_args, dataset.mask_format = tokenizer, data_args, "polygon"
    item = dataset[0]
    return {
        "prompt.input_ids": item["input_ids"],
        "prompt.token_refer_id": item["token_refer_id"],
        "prompt.refer_embedding_indices": item["refer_embedding_indices"],
    }


def run_official(repo: Path, work: Path, vocab: int, seg_id: int, dtype: torch.dtype) -> None:
    import transformers  # noqa: F401  (before the stand-ins: it probes which packages exist)
    import transformers.models.phi.modeling_phi  # noqa: F401
    import transformers.models.siglip.modeling_siglip  # noqa: F401

    install_stand_ins()
    sys.path.insert(0, str(repo))
    os.chdir(repo / "hyperseg")  # the release resolves some config paths relative to its package
    from fvcore.common.config import CfgNode
    from hyperseg.model.language_model.llava_phi import HyperSeg
    from hyperseg.model.mask_decoder.mask_config.config import Config
    from hyperseg.model.mipha.model.language_model.configuration_mipha import MiphaPhiConfig

    yaml = repo / "hyperseg/model/mask_decoder/mask_config/maskformer2_swin_base_384_bs16_50ep.yaml"
    cfg_coco = Config.fromfile(str(yaml))  # the two steps of eval_datasets.get_mask_config
    cfg = CfgNode.load_yaml_with_base(str(yaml), allow_unsafe=True)
    cfg.update(cfg_coco.__dict__.items())
    cfg = Config(cfg)
    cfg.MODEL.MASK_FORMER.SEG_TASK = "referring"

    vision = {k: v for k, v in SIGLIP.items()}
    config = MiphaPhiConfig(
        vision_config={
            "vision_tower": vision,
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
    config.swin_type = "base"
    config.mask_decode_train = True
    config.architectures = ["HyperSeg"]
    torch.manual_seed(0)
    model = HyperSeg(config, mask_decoder_cfg=cfg)
    with torch.no_grad():  # perturb every parameter so no zero / one init hides a mistake
        gen = torch.Generator().manual_seed(1)
        for p in model.parameters():
            noise = torch.randn(p.shape, generator=gen)
            if p.ndim == 1 or torch.all(p == p.flatten()[0]):
                p.add_(0.05 * noise)
            else:
                p.add_(0.2 * p.std().clamp(min=1e-3) * noise)
    model.eval()
    model.save_pretrained(work / "official", safe_serialization=True, max_shard_size="200MB")
    model = model.to(dtype)

    inputs = torch.load(work / "inputs.pt")
    captured: dict[str, torch.Tensor] = dict(official_prompt(work / "tokenizer", seg_id))
    frame = {"index": 0}

    def keep(name):
        def hook(_module, _args, output):
            captured[f"f{frame['index']}.{name}"] = output.detach().clone()

        return hook

    inner = model.get_model()
    inner.vision_tower_mask.register_forward_hook(
        lambda m, a, out: captured.update(
            {f"f{frame['index']}.res{i + 2}": o.detach().clone() for i, o in enumerate(out)}
        )
    )
    inner.mm_projector.register_forward_hook(keep("image_tokens"))
    model.expanded_seg_query_project.register_forward_hook(keep("fvp_tokens"))
    model.seg_query_projector.register_forward_hook(keep("mask_queries"))
    model.SEG_token_projector.register_forward_hook(keep("refer"))
    model.temporal_query_project.register_forward_hook(keep("next_latents"))
    inner.register_forward_hook(
        lambda m, a, out: captured.update({f"f{frame['index']}.llm_hidden": out.last_hidden_state.detach().clone()})
    )
    forward_features = model.pixel_decoder.forward_features

    def pixel_decoder_features(features):
        mask_features, encoder_features, multi_scale = forward_features(features)
        captured[f"f{frame['index']}.mask_features"] = mask_features.detach().clone()
        for i, level in enumerate(multi_scale):
            captured[f"f{frame['index']}.multi_scale{i}"] = level.detach().clone()
        return mask_features, encoder_features, multi_scale

    model.pixel_decoder.forward_features = pixel_decoder_features

    def stop(_module, _args, output):
        captured[f"f{frame['index']}.pred_masks"] = output["pred_masks"].detach().clone()
        captured[f"f{frame['index']}.refer_logits"] = output["pred_SEG_logits"].detach().clone()
        raise _StopAfterPredictor

    model.predictor.register_forward_hook(stop)
    ids = captured["prompt.input_ids"][None]
    refer_indices = captured["prompt.refer_embedding_indices"][None]
    latents = None
    with torch.no_grad():
        for index in range(2):
            frame["index"] = index
            try:
                model.eval_seg(
                    input_ids=ids,
                    attention_mask=torch.ones_like(ids, dtype=torch.bool),
                    images=inputs["pixel_values"][index : index + 1].to(dtype),
                    images_clip=inputs["global_pixel_values"][index : index + 1].to(dtype),
                    seg_info=[{}],
                    token_refer_id=[captured["prompt.token_refer_id"]],
                    refer_embedding_indices=refer_indices,
                    use_temporal_query=True,
                    cur_temporal_query=latents,
                )
            except _StopAfterPredictor:
                pass
            # eval_seg returns the projected latents after post-processing; the hook caught the same tensor
            latents = captured[f"f{index}.next_latents"]
    torch.save(
        {k: v if k.startswith("prompt.") else v.float() for k, v in captured.items()}, work / "official_outputs.pt"
    )
    print(f"official stage: {len(captured)} tensors captured, checkpoint in {work / 'official'}")


# ====================================================================== stage 2: ours (transformers 5)
def build_inputs(work: Path) -> dict:
    """Two random 'frames', already normalized (both models take normalized tensors)."""
    gen = torch.Generator().manual_seed(2)
    inputs = {
        "pixel_values": torch.randn(2, 3, 1024, 1024, generator=gen),
        "global_pixel_values": torch.rand(2, 3, 384, 384, generator=gen) * 2 - 1,
    }
    torch.save(inputs, work / "inputs.pt")
    return inputs


def expand(official_ids: torch.Tensor, refer_ids: torch.Tensor, config) -> tuple[torch.Tensor, torch.Tensor]:
    """The official one-id placeholders -> our expanded ids (one position per embedding) and the refer mask."""
    vision = config.vision_config
    counts = {
        IMAGE: (vision.image_size // vision.patch_size) ** 2,
        TEMPORAL: config.perceiver_config.num_latents,
        SEG: config.decoder_config.num_queries,
    }
    ids, refer = [], []
    for token in official_ids.tolist():
        if token == REFER:
            ids += refer_ids.tolist()
            refer += [True] * len(refer_ids)
        else:
            ids += [token] * counts.get(token, 1)
            refer += [False] * counts.get(token, 1)
    return torch.tensor([ids]), torch.tensor([refer])


def compare(work: Path, tolerance: float) -> int:
    from hyperseg_lite import load_model

    loaded = load_model(str(work / "official"), precision="fp32")
    model = loaded.model
    model.config.global_prompt_aggregation = False  # the released eval code does not average prompts over frames
    theirs = torch.load(work / "official_outputs.pt")
    inputs = torch.load(work / "inputs.pt")
    ids, refer_mask = expand(theirs["prompt.input_ids"], theirs["prompt.token_refer_id"], model.config)
    # the prompt side: our processor must produce the release's ids, placeholder for placeholder
    from hyperseg_lite.prompts import referring_prompt

    encoded = loaded.processor.encode(referring_prompt(), expression=EXPRESSION + ".")
    same_ids = torch.equal(encoded.input_ids, ids[0]) and torch.equal(encoded.refer_mask, refer_mask[0])
    print(
        f"prompt ids (processor vs release's RefCOCO_dataset_test): {'identical' if same_ids else 'DIFFERENT'} "
        f"({ids.shape[1]} positions after expansion)"
    )
    if not same_ids:
        decode = loaded.tokenizer.decode
        print("  ours   :", repr(decode(encoded.input_ids.clamp(min=0)[:200])))
        print("  release:", repr(decode(ids[0].clamp(min=0)[:200])))
    mask = torch.ones_like(ids)
    ours: dict[str, torch.Tensor] = {}
    state = None
    with torch.no_grad():
        for index in range(2):
            pixels = inputs["pixel_values"][index : index + 1]
            global_pixels = inputs["global_pixel_values"][index : index + 1]
            pyramid = model.pyramid(pixels)
            ours |= {f"f{index}.res{i + 2}": f for i, f in enumerate(pyramid)}
            features = model.encode_images(pixels, global_pixels, temporal_state=state)
            out, hidden = model.segment(features, ids, mask, refer_mask=refer_mask, temporal_state=state)
            prompts = model.entity_recognition(hidden, ids, None, refer_mask, model.num_queries)
            ours |= {
                f"f{index}.image_tokens": features.global_tokens,
                f"f{index}.fvp_tokens": features.fvp_tokens,
                f"f{index}.llm_hidden": hidden,
                f"f{index}.mask_queries": prompts.mask_queries,
                f"f{index}.refer": prompts.refer,
                f"f{index}.mask_features": features.mask_features,
                f"f{index}.pred_masks": out.pred_masks,
                f"f{index}.refer_logits": out.prompt_logits[..., :1],
                f"f{index}.next_latents": out.temporal_state.latents,
            }
            ours |= {f"f{index}.multi_scale{i}": level for i, level in enumerate(features.multi_scale_features)}
            state = out.temporal_state
    print("| frame.output | shape | max abs diff | max abs value | relative |\n|---|---|---|---|---|")
    worst = 0.0
    for name in sorted(theirs, key=lambda n: (n[:2], list(theirs).index(n))):
        if name.startswith("prompt."):
            continue
        if name not in ours:
            print(f"| {name} | {tuple(theirs[name].shape)} | (not compared) | | |")
            continue
        a, b = ours[name].float(), theirs[name].float()
        if a.shape != b.shape:
            print(f"| {name} | ours {tuple(a.shape)} vs {tuple(b.shape)} | SHAPE MISMATCH | | |")
            worst = float("inf")
            continue
        diff = (a - b).abs().max().item()
        scale = b.abs().max().item()
        rel = diff / max(scale, 1e-12)
        worst = max(worst, rel)
        print(f"| {name} | {tuple(b.shape)} | {diff:.2e} | {scale:.2e} | {rel:.1e} |")
    # the referring answer: the official SEG_instance_inference score = sigmoid(logit) * mean prob inside the mask
    for index in range(2):
        picks = []
        for source in (ours, theirs):
            logits, masks = source[f"f{index}.refer_logits"][0, :, 0].float(), source[f"f{index}.pred_masks"][0].float()
            fg = (masks > 0).float()
            score = logits.sigmoid() * (masks.sigmoid() * fg).flatten(1).sum(1) / (fg.flatten(1).sum(1) + 1e-6)
            picks.append(int(score.argmax()))
        print(f"frame {index}: best query ours {picks[0]}, official {picks[1]}")
        worst = worst if picks[0] == picks[1] else float("inf")
    print(f"\nworst relative difference: {worst:.2e} (tolerance {tolerance:.0e})")
    return 0 if worst <= tolerance and same_ids else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--official-repo", type=Path, required=True, help="checkout of congvvc/HyperSeg")
    parser.add_argument(
        "--official-python",
        default=None,
        help="interpreter with transformers 4.38 + einops, addict, fvcore (required for stage 2)",
    )
    parser.add_argument("--work", type=Path, default=Path("parity_e2e"), help="scratch folder (checkpoint, tensors)")
    parser.add_argument(
        "--dtype",
        default="float32",
        choices=["float32", "float64"],
        help="official side precision (the release evaluates in fp32)",
    )
    parser.add_argument("--tolerance", type=float, default=1e-3, help="max relative difference accepted")
    parser.add_argument("--reuse", action="store_true", help="skip stage 1 when its outputs are already in --work")
    parser.add_argument("--stage", default="both", choices=["both", "official"], help=argparse.SUPPRESS)
    parser.add_argument("--vocab", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--seg-id", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    work = args.work.resolve()
    if args.stage == "official":
        run_official(args.official_repo.resolve(), work, args.vocab, args.seg_id, getattr(torch, args.dtype))
        return
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's hyperseg_lite, not an installed one
    if not args.official_python:
        parser.error("--official-python is required (an interpreter with transformers 4.38.2)")
    from hyperseg_lite.tokenization import build_byte_tokenizer

    work.mkdir(parents=True, exist_ok=True)
    os.environ["HF_HOME"] = str(work / "hf_home")  # the converted copy is cached here, not in ~/.cache
    shutil.rmtree(work / "hf_home", ignore_errors=True)  # always convert afresh (the converter may have changed)
    tokenizer = build_byte_tokenizer()
    if args.reuse and (work / "official_outputs.pt").exists():
        print(f"reusing the official stage's outputs in {work}")
        sys.exit(compare(work, args.tolerance))
    build_inputs(work)
    tokenizer.save_pretrained(work / "tokenizer")  # read by the release's dataset class in stage 1
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
            "--dtype",
            args.dtype,
            "--vocab",
            str(len(tokenizer)),
            "--seg-id",
            str(tokenizer.convert_tokens_to_ids("[SEG]")),
        ],
        check=True,
        env={**os.environ, "PYTHONPATH": ""},
    )
    tokenizer.save_pretrained(work / "official")  # the release ships Phi-2's tokenizer + [SEG]; here the byte one
    (work / "official" / "added_tokens.json").write_text(
        json.dumps({"[SEG]": tokenizer.convert_tokens_to_ids("[SEG]")})
    )
    sys.exit(compare(work, args.tolerance))


if __name__ == "__main__":
    main()
