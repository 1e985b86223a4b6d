"""The stage-2 colour loss: colour names read off the pixels, a head on the matched mask tokens' decoder state."""

from __future__ import annotations

import csv
import json

import numpy as np
import torch

from hyperseg_lite.data.scene import generate_scene
from hyperseg_lite.data.vocabulary import COLOUR_NAMES
from hyperseg_lite.modeling.losses import SegmentationTarget
from hyperseg_lite.train import main, training_step
from hyperseg_lite.training.batching import masks_to_frame
from hyperseg_lite.training.colour_auxiliary import COLOUR_HEAD_FILE, QueryColourAuxiliary, palette_colours


def test_every_painted_object_gets_its_colour_name_and_the_sky_none(tiny):
    config, processor = tiny.model.config, tiny.processor
    rng = np.random.default_rng(5)
    named = right = 0
    for _ in range(12):
        scene = generate_scene(rng, (96, 96))
        prepared = processor.prepare_image(torch.from_numpy(scene.image))
        masks = np.stack([o.mask for o in scene.objects])
        target = SegmentationTarget(masks_to_frame(masks, prepared, config.image_size), torch.zeros(len(masks)).long())
        found = palette_colours(prepared.pixel_values, target, config.pixel_mean, config.pixel_std).tolist()
        named += len(found)
        right += sum(k >= 0 and COLOUR_NAMES[k] == o.colour for o, k in zip(scene.objects, found))
        if "sky" in scene.stuff_present:
            sky = masks_to_frame(scene.stuff_visible("sky")[None], prepared, config.image_size)
            sky_target = SegmentationTarget(sky, torch.zeros(1).long())
            assert palette_colours(prepared.pixel_values, sky_target, config.pixel_mean, config.pixel_std).item() == -1
    assert named > 30 and right == named


def test_the_colour_loss_reaches_the_decoder_and_its_head_is_saved_and_resumed(tiny, tmp_path):
    from hyperseg_lite.data import World

    world = World("train", 0, image_size=tiny.model.config.image_size)
    sample = next(s for s in (world.sample("referring", i) for i in range(20)) if not s.no_target)
    head = QueryColourAuxiliary(tiny.model.config.decoder_config.hidden_dim)
    tiny.model.zero_grad(set_to_none=True)
    loss, parts = training_step(tiny, [sample], "cpu", colour_aux=head, colour_weight=1.0)
    assert parts["loss_colour"] > 0
    loss.backward()
    assert head.classifier.weight.grad is not None and head.classifier.weight.grad.abs().sum() > 0
    tiny.model.zero_grad(set_to_none=True)
    off = training_step(tiny, [sample], "cpu", colour_aux=head, colour_weight=0.0)[1]
    assert "loss_colour" not in off

    common = ["--batch-size", "2", "--colour-loss-weight", "1", "--tasks", "referring", "panoptic"]
    run = tmp_path / "run"
    folder = main(["--preset", "tiny", "--steps", "2", "--output", str(run), *common])
    assert (folder / COLOUR_HEAD_FILE).is_file()
    assert json.loads((folder / "training_args.json").read_text())["colour_loss_weight"] == 1.0
    main(["--resume", str(run), "--steps", "3"])
    with open(run / "log.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3 and all("loss_colour" in json.loads(row["parts"]) for row in rows)
