"""Do the visual features know an object's shape category and colour? Linear probes on the embedded model.

    python research/tools/shape_probe.py --checkpoint assets/hyperseg-lite --split val --samples 60

For every thing segment of panoptic samples (ground truth), a logistic regression (5-fold cross-validation)
is fitted to predict its shape category (circle, star, ...) from

* each backbone stage's features averaged over the segment's ground-truth mask,
* the pixel decoder's outputs averaged the same way: the stride-4 ``mask_features`` the masks are drawn from and
  the three levels the mask tokens cross-attend to (lowest resolution first), and
* the decoder's final state of the mask token that covers the segment best (what ``CLASS_proj`` reads to
  score class names), for segments covered with IoU >= 0.5, and, where the model has one
  (``decoder_config.mask_shape_embedding``), that token's mask-shape embedding (added to that state).

Every feature set is probed for the object's colour name too, which referring expressions need as much as shape.
Accuracy near the majority-class rate means that information is not there for the scores to use.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from hyperseg_lite.data.vocabulary import CATEGORIES, COLOUR_NAMES, STUFF_NAMES
from hyperseg_lite.data.world import World
from hyperseg_lite.loading import EMBEDDED_CHECKPOINT
from hyperseg_lite.pipeline import HyperSegPipeline, HyperSegPredictor


def _probe(features: list[np.ndarray], labels: list[int]) -> float:
    """5-fold accuracy of a linear probe; fewer folds where no class has five members (a short run), NaN with none
    of two."""
    folds = min(5, int(np.bincount(labels).max()))
    if folds < 2:
        return float("nan")
    model = LogisticRegression(max_iter=3000)
    return float(cross_val_score(model, np.asarray(features), np.asarray(labels), cv=folds).mean())


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
        model.pixel_decoder.register_forward_hook(lambda _m, _i, out: seen.__setitem__("pixel_decoder", out)),
        model.mask_decoder.CLASS_proj.register_forward_hook(lambda _m, inp, _o: seen.__setitem__("states", inp[0])),
    ]
    shape_encoder = model.mask_decoder.mask_shape  # only where decoder_config.mask_shape_embedding is on
    if shape_encoder is not None:
        hooks.append(shape_encoder.register_forward_hook(lambda _m, _i, out: seen.__setitem__("shapes", out)))
    # per feature set: the pooled features and the (shape category, colour) of their objects
    features: dict[str, list[np.ndarray]] = {}
    labels: dict[str, list[tuple[int, int]]] = {}

    def add(name: str, vector: torch.Tensor, label: tuple[int, int]) -> None:
        features.setdefault(name, []).append(vector.float().numpy())
        labels.setdefault(name, []).append(label)

    try:
        for index in range(args.samples):
            sample = world.sample("panoptic", index)
            scene = world.scene(world.rng("panoptic", index))  # the sample's scene: the objects' colours
            names = list(sample.class_names)
            image = predictor.encode(sample.image)
            masks = predictor.predict(class_names=names, mode="panoptic", image=image).to_original()
            states = seen["states"][0].float()  # last CLASS_proj call: the decoder's final layer
            mask_features, levels = seen["pixel_decoder"]
            maps = {f"backbone stage {level + 1}": stage for level, stage in enumerate(seen["stages"])}
            maps["pixel decoder mask_features (stride 4)"] = mask_features
            maps.update({f"pixel decoder level {level} (attended)": x for level, x in enumerate(levels)})
            for truth, label in zip(sample.masks, sample.labels):
                if names[label] in STUFF_NAMES:
                    continue
                owner = max(scene.objects, key=lambda o: (o.mask & truth).sum())
                target = (CATEGORIES.index(names[label]), COLOUR_NAMES.index(owner.colour))
                # the ground-truth mask on the padded model frame, pooled to each map's grid
                frame_mask = torch.zeros(model.config.image_size, model.config.image_size)
                h, w = image.prepared.resized_size
                frame_mask[:h, :w] = F.interpolate(torch.from_numpy(truth).float()[None, None], size=(h, w))[0, 0]
                for name, feature_map in maps.items():
                    weight = F.adaptive_avg_pool2d(frame_mask[None, None], feature_map.shape[-2:])[0, 0]
                    add(name, (feature_map[0].float() * weight).sum((1, 2)) / weight.sum().clamp(min=1e-6), target)
                ious = (masks & truth).sum((1, 2)) / np.maximum((masks | truth).sum((1, 2)), 1)
                if ious.max() >= 0.5:
                    add(
                        "what the scores read for the best mask token (decoder state)",
                        states[int(ious.argmax())],
                        target,
                    )
                    if shape_encoder is not None:
                        add(
                            "mask-shape embedding of the best mask token", seen["shapes"][0, int(ious.argmax())], target
                        )
    finally:
        for hook in hooks:
            hook.remove()
    report = {}
    for name, vectors in features.items():
        shapes, colours = zip(*labels[name])
        report[name] = {"shape": _probe(vectors, list(shapes)), "colour": _probe(vectors, list(colours))}
    shapes, colours = zip(*labels["backbone stage 1"])
    majority = {"shape": np.bincount(shapes).max() / len(shapes), "colour": np.bincount(colours).max() / len(colours)}
    print(
        f"{args.split} seed {args.seed}: {len(shapes)} thing segments, {len(set(shapes))} categories (majority "
        f"{majority['shape']:.2f}), {len(set(colours))} colours (majority {majority['colour']:.2f})"
    )
    print("| features | objects | shape-category probe accuracy | colour probe accuracy |\n|---|---|---|---|")
    for name, accuracy in report.items():
        print(f"| {name} | {len(features[name])} | {accuracy['shape']:.2f} | {accuracy['colour']:.2f} |")
    return {**report, "majority": {k: float(v) for k, v in majority.items()}}


if __name__ == "__main__":
    main()
