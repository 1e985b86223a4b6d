"""Can a query tell each object from its neighbours in a trained model's ``mask_features``? The stage-1 probe, anywhere.

    python research/tools/mask_feature_probe.py --checkpoint assets/hyperseg-lite assets/lite2-stage1 C ...

A mask token draws its mask as a dot product with the pixel decoder's stride-4 ``mask_features``; where two
neighbouring objects look alike there, no token draws one without the other. Stage 1 measures that with
``decoder_instance_probe`` (:func:`hyperseg_lite.pretrain_vision.instance_probe`: a linear query head fit for 300
steps on the frozen features of 100 train scenes, then each of 150 val scenes' objects drawn from its own
mask-pooled query; mean IoU, and the share of objects under 0.5). This runs the same probe on the same scenes for
any checkpoint: a whole model (its pyramid and pixel decoder, as stage 2 left them) or a stage-1 folder.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from torch import nn

from hyperseg_lite.loading import load_model
from hyperseg_lite.pretrain_vision import ImageEncoders, instance_probe, load_encoders
from hyperseg_lite.training.vision_targets import fixed_scenes

SCENE_SEED = 4242  # pretrain_vision's scenes


def _encoders(checkpoint: str) -> tuple[nn.Module, object]:
    """The pyramid and pixel decoder of a checkpoint (model or stage 1), with the model's processor."""
    if (Path(checkpoint) / "config.json").exists() or checkpoint in ("", "embedded"):
        loaded = load_model(checkpoint or None, precision="fp32", device_map="cpu")
        return loaded.model, loaded.processor
    # a stage-1 folder: the lite2 encoders and pixel decoder; the processor of a lite2 model reads images alike
    from hyperseg_lite.configuration_hyperseg import HyperSegConfig
    from hyperseg_lite.processing_hyperseg import HyperSegProcessor
    from hyperseg_lite.tokenization import build_byte_tokenizer

    config = HyperSegConfig.from_preset("lite2")
    encoders = ImageEncoders(config, pixel_decoder=True)
    load_encoders(encoders, Path(checkpoint))
    return encoders, HyperSegProcessor(build_byte_tokenizer(), config)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", nargs="+", required=True, help="model or stage-1 folders ('embedded': lite)")
    parser.add_argument("--val-scenes", type=int, default=150, help="objects drawn (pretrain_vision: 150)")
    parser.add_argument("--probe-scenes", type=int, default=100, help="the head is fit on (pretrain_vision: 100)")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args(argv)
    results, scenes = {}, {}  # scenes drawn once per image size, shared by the checkpoints of that size
    for checkpoint in args.checkpoint:
        encoders, processor = _encoders(checkpoint)
        encoders.eval()
        size = processor.config.image_size
        if size not in scenes:
            scenes[size] = (
                fixed_scenes("train", SCENE_SEED, args.probe_scenes, size),
                fixed_scenes("val", SCENE_SEED, args.val_scenes, size),
            )
        results[checkpoint] = instance_probe(encoders, processor, *scenes[size])  # seeds its own head
        print(checkpoint, " ".join(f"{k} {v:.3f}" for k, v in results[checkpoint].items()), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
