"""Where does the mask token that finds an object learn its colour and shape? Probes through the mask decoder.

    python research/tools/decoder_probe.py --checkpoint assets/hyperseg-lite --samples 120

For every thing segment of val panoptic samples that some mask token covers with IoU >= 0.5, the token that
covers it best is followed through the decoder: the LLM's mask query entering it, and at every layer the
cross-attention's output, the state after it and the state after the FFN. A logistic regression (standardised,
C 0.1, 5-fold cross-validation) predicts the object's shape category and colour name from each. Beside them,
the pixel decoder's ``mask_features`` averaged under that token's own final mask (soft sigmoid weights, what
``decoder_config.mask_pooled_scores`` adds to the scored state), under its exclusive mask (pixels it wins, above
0.5) and under the true mask; and how much of the image each layer's masked attention lets the token see.

`research/tools/shape_probe.py` asks what the encoders know; this asks where the decoder drops it.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from hyperseg_lite.data.vocabulary import CATEGORIES, COLOUR_NAMES, STUFF_NAMES
from hyperseg_lite.data.world import World
from hyperseg_lite.loading import EMBEDDED_CHECKPOINT
from hyperseg_lite.pipeline import HyperSegPipeline, HyperSegPredictor


def _probe(features: list[np.ndarray], labels: np.ndarray) -> float:
    folds = min(5, int(np.bincount(labels).max()))  # fewer folds where no class has five members (a short run)
    if folds < 2:
        return float("nan")
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.1))
    return float(cross_val_score(model, np.stack(features), labels, cv=folds).mean())


def _hook_decoder(model, seen: dict) -> list:
    """Record the decoder's inputs and every layer's intermediate states (the last forward pass's)."""
    decoder = model.mask_decoder
    hooks = [
        decoder.register_forward_pre_hook(
            lambda _m, args, kwargs: seen.__setitem__(
                "the LLM's mask query", (args[2] if len(args) > 2 else kwargs["queries"]).transpose(0, 1)
            ),
            with_kwargs=True,
        ),
        decoder.register_forward_hook(lambda _m, _i, out: seen.__setitem__("masks", out.pred_masks)),
        model.pixel_decoder.register_forward_hook(lambda _m, _i, out: seen.__setitem__("mask_features", out[0])),
    ]
    for i, layer in enumerate(decoder.transformer_cross_attention_layers):
        hooks += [
            layer.multihead_attn.register_forward_hook(
                lambda _m, _i, out, i=i: seen.__setitem__(f"layer {i} cross-attention output", out[0])
            ),
            layer.register_forward_hook(lambda _m, _i, out, i=i: seen.__setitem__(f"layer {i} after cross", out)),
            layer.register_forward_pre_hook(lambda _m, args, i=i: seen.__setitem__(f"attention {i}", args[2])),
        ]
    for i, layer in enumerate(decoder.transformer_ffn_layers):
        hooks.append(
            layer.register_forward_hook(lambda _m, _i, out, i=i: seen.__setitem__(f"layer {i} after ffn", out))
        )
    return hooks


@torch.inference_mode()
def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=str(EMBEDDED_CHECKPOINT))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=120, help="val panoptic samples")
    args = parser.parse_args(argv)
    pipe = HyperSegPipeline.from_pretrained(args.checkpoint)
    predictor = HyperSegPredictor(pipe)
    model = pipe.model
    heads = model.mask_decoder.num_heads
    world = World("val", args.seed, image_size=model.config.image_size)
    seen: dict = {}
    hooks = _hook_decoder(model, seen)
    features: dict[str, list[np.ndarray]] = {}
    attended: dict[str, list[float]] = {}
    labels = []
    try:
        for index in range(args.samples):
            sample = world.sample("panoptic", index)
            scene = world.scene(world.rng("panoptic", index))  # the sample's scene: the objects' colours
            names = list(sample.class_names)
            image = predictor.encode(sample.image)
            masks = predictor.predict(class_names=names, mode="panoptic", image=image).to_original()
            logits, mask_features = seen["masks"][0].float(), seen["mask_features"][0].float()
            exclusive = (logits.argmax(0)[None] == torch.arange(len(logits))[:, None, None]) & (logits > 0)
            for truth, label in zip(sample.masks, sample.labels):
                if names[label] in STUFF_NAMES:
                    continue
                ious = (masks & truth).sum((1, 2)) / np.maximum((masks | truth).sum((1, 2)), 1)
                if ious.max() < 0.5:
                    continue
                token = int(ious.argmax())
                owner = max(scene.objects, key=lambda o: (o.mask & truth).sum())
                labels.append((CATEGORIES.index(names[label]), COLOUR_NAMES.index(owner.colour)))
                for name, value in seen.items():
                    if name.startswith("attention"):  # (B * heads, Q, HW), True = may not attend; batch 0, head 0
                        allowed = ~value.view(-1, heads, *value.shape[-2:])[0, 0, token]
                        attended.setdefault(f"layer {name.split()[1]}", []).append(float(allowed.float().mean()))
                    elif name.startswith("layer") or name.startswith("the LLM"):
                        features.setdefault(name, []).append(value[token, 0].float().numpy())
                h, w = image.prepared.resized_size
                frame = torch.zeros(model.config.image_size, model.config.image_size)
                frame[:h, :w] = F.interpolate(torch.from_numpy(truth).float()[None, None], size=(h, w))[0, 0]
                pools = {
                    "its own soft mask": logits[token].sigmoid(),
                    "its exclusive mask": exclusive[token].float(),
                    "the true mask": F.adaptive_avg_pool2d(frame[None, None], mask_features.shape[-2:])[0, 0],
                }
                for name, weight in pools.items():
                    pooled = (mask_features * weight).sum((1, 2)) / weight.sum().clamp(min=1e-6)
                    features.setdefault(f"mask_features under {name}", []).append(pooled.numpy())
    finally:
        for hook in hooks:
            hook.remove()
    shapes, colours = (np.array(column) for column in zip(*labels))
    report = {name: {"shape": _probe(v, shapes), "colour": _probe(v, colours)} for name, v in features.items()}
    report["attended fraction"] = {name: float(np.mean(v)) for name, v in attended.items()}
    print(
        f"val seed {args.seed}: {len(labels)} objects, majority colour {np.bincount(colours).max() / len(colours):.2f}"
    )
    print("| features of the best mask token | shape probe | colour probe |\n|---|---|---|")
    for name, accuracy in report.items():
        if name != "attended fraction":
            print(f"| {name} | {accuracy['shape']:.2f} | {accuracy['colour']:.2f} |")
    print("masked attention, share of the image the token may see:", report["attended fraction"])
    return report


if __name__ == "__main__":
    main()
