"""Do the visual features know an object's shape category? Linear probes on the embedded model.

    python research/tools/shape_probe.py --checkpoint assets/hyperseg-lite --split val --samples 60

For every thing segment of panoptic samples (ground truth), a logistic regression (5-fold cross-validation)
is fitted to predict its shape category (circle, star, ...) from

* each backbone stage's features averaged over the segment's ground-truth mask, and
* the decoder's final state of the mask token that covers the segment best (what ``CLASS_proj`` reads to
  score class names), for segments covered with IoU >= 0.5, and, where the model has one
  (``decoder_config.mask_shape_embedding``), that token's mask-shape embedding (added to that state).

Accuracy near the majority-class rate means that information is not there for the class scores to use. As a
control, the same stage features are probed for the segment's colour octant (mean R, G, B of its pixels each
above or below 128), which the model needs for its masks and its referring expressions.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from hyperseg_lite.data.vocabulary import CATEGORIES, STUFF_NAMES
from hyperseg_lite.data.world import World
from hyperseg_lite.loading import EMBEDDED_CHECKPOINT
from hyperseg_lite.pipeline import HyperSegPipeline, HyperSegPredictor


def _probe(features: list[np.ndarray], labels: list[int]) -> float:
    return float(
        cross_val_score(LogisticRegression(max_iter=3000), np.asarray(features), np.asarray(labels), cv=5).mean()
    )


@torch.inference_mode()
def main(argv=None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=str(EMBEDDED_CHECKPOINT))
    parser.add_argument("--split", default="val", choices=("train", "val", "test", "compositional"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=60)
    args = parser.parse_args(argv)
    pipe = HyperSegPipeline.from_pretrained(args.checkpoint)
    predictor = HyperSegPredictor(pipe)
    model = pipe.model
    world = World(args.split, args.seed, image_size=model.config.image_size)
    seen: dict[str, object] = {}
    hooks = [
        model.pyramid.register_forward_hook(lambda _m, _i, out: seen.__setitem__("stages", out)),
        model.mask_decoder.CLASS_proj.register_forward_hook(lambda _m, inp, _o: seen.__setitem__("states", inp[0])),
    ]
    shape_encoder = model.mask_decoder.mask_shape  # only where decoder_config.mask_shape_embedding is on
    if shape_encoder is not None:
        hooks.append(shape_encoder.register_forward_hook(lambda _m, _i, out: seen.__setitem__("shapes", out)))
    shape_features: list[np.ndarray] = []
    stage_features: dict[int, list[np.ndarray]] = {}
    stage_labels: list[int] = []
    colour_labels: list[int] = []
    state_features: list[np.ndarray] = []
    state_labels: list[int] = []
    try:
        for index in range(args.samples):
            sample = world.sample("panoptic", index)
            names = list(sample.class_names)
            image = predictor.encode(sample.image)
            masks = predictor.predict(class_names=names, mode="panoptic", image=image).to_original()
            states = seen["states"][0].float()  # last CLASS_proj call: the decoder's final layer
            for truth, label in zip(sample.masks, sample.labels):
                if names[label] in STUFF_NAMES:
                    continue
                category = CATEGORIES.index(names[label])
                # the ground-truth mask on the padded model frame, pooled to each stage's grid
                frame_mask = torch.zeros(model.config.image_size, model.config.image_size)
                h, w = image.prepared.resized_size
                frame_mask[:h, :w] = F.interpolate(torch.from_numpy(truth).float()[None, None], size=(h, w))[0, 0]
                for level, stage in enumerate(seen["stages"]):
                    weight = F.adaptive_avg_pool2d(frame_mask[None, None], stage.shape[-2:])[0, 0]
                    pooled = (stage[0].float() * weight).sum((1, 2)) / weight.sum().clamp(min=1e-6)
                    stage_features.setdefault(level, []).append(pooled.numpy())
                stage_labels.append(category)
                red, green, blue = sample.image[truth].reshape(-1, 3).mean(0) > 128
                colour_labels.append(4 * int(red) + 2 * int(green) + int(blue))
                ious = (masks & truth).sum((1, 2)) / np.maximum((masks | truth).sum((1, 2)), 1)
                if ious.max() >= 0.5:
                    state_features.append(states[int(ious.argmax())].numpy())
                    state_labels.append(category)
                    if shape_encoder is not None:
                        shape_features.append(seen["shapes"][0, int(ious.argmax())].float().numpy())
    finally:
        for hook in hooks:
            hook.remove()
    report = {f"backbone stage {level + 1}": _probe(feats, stage_labels) for level, feats in stage_features.items()}
    report["what CLASS_proj reads for the best mask token"] = _probe(state_features, state_labels)
    if shape_features:
        report["mask-shape embedding of the best mask token"] = _probe(shape_features, state_labels)
    control = {f"backbone stage {level + 1}": _probe(feats, colour_labels) for level, feats in stage_features.items()}
    majority = np.bincount(stage_labels).max() / len(stage_labels)
    colour_majority = np.bincount(colour_labels).max() / len(colour_labels)
    print(
        f"{args.split} seed {args.seed}: {len(stage_labels)} thing segments ({len(state_labels)} covered with IoU >= "
        f"0.5), {len(set(stage_labels))} categories, majority class {majority:.2f}"
    )
    print(f"control: colour octant, majority class {colour_majority:.2f}")
    print("| features | shape-category probe accuracy | colour-octant probe accuracy (control) |\n|---|---|---|")
    for name, accuracy in report.items():
        print(
            f"| {name} | {accuracy:.2f} | {control[name]:.2f} |"
            if name in control
            else f"| {name} | {accuracy:.2f} | |"
        )
    return {
        **report,
        "majority": float(majority),
        **{f"colour {k}": v for k, v in control.items()},
        "colour majority": float(colour_majority),
    }


if __name__ == "__main__":
    main()
