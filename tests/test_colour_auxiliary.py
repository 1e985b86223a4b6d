"""The stage-2 colour loss: colour names read off the pixels, a head on the matched mask tokens' decoder state."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest
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


def test_the_adversary_learns_the_colour_and_pushes_its_input_the_other_way():
    """Same head, same loss; reversed, the gradient that reaches the states is the normal one negated."""
    torch.manual_seed(0)
    states = torch.randn(2, 5, 16, requires_grad=True)
    matched = [(torch.tensor([0, 3]), torch.tensor([1, 0])), (torch.tensor([2]), torch.tensor([0]))]
    colours = [torch.tensor([4, 7]), torch.tensor([-1])]
    gradients = {}
    for adversarial in (False, True):
        torch.manual_seed(1)
        head = QueryColourAuxiliary(16, adversarial=adversarial)
        states.grad = None
        head.loss(states, matched, colours).backward()
        gradients[adversarial] = (states.grad.clone(), head.classifier.weight.grad.clone())
    assert gradients[False][0].abs().sum() > 0
    assert torch.allclose(gradients[True][0], -gradients[False][0])  # the input: pushed away from the colour
    assert torch.allclose(gradients[True][1], gradients[False][1])  # the head: learns the colour as ever


def test_the_class_colour_adversary_reads_the_class_scores_input_on_class_prompts_only(tiny, tmp_path):
    from hyperseg_lite.data import World

    world = World("train", 0, image_size=tiny.model.config.image_size)
    head = QueryColourAuxiliary(tiny.model.config.decoder_config.hidden_dim, adversarial=True)
    panoptic = world.sample("panoptic", 0)
    tiny.model.zero_grad(set_to_none=True)
    loss, parts = training_step(tiny, [panoptic], "cpu", colour_aux=head, colour_weight=1.0)
    assert parts["loss_colour_adversary"] > 0 and "loss_colour" not in parts
    loss.backward()
    assert tiny.model.mask_decoder.CLASS_proj.layers[0].weight.grad is not None
    referring = next(s for s in (world.sample("referring", i) for i in range(20)) if not s.no_target)
    tiny.model.zero_grad(set_to_none=True)
    assert "loss_colour_adversary" not in training_step(tiny, [referring], "cpu", colour_aux=head, colour_weight=1.0)[1]

    run = tmp_path / "run"
    common = ["--batch-size", "2", "--class-colour-adversary", "0.5", "--tasks", "panoptic", "referring"]
    folder = main(["--preset", "tiny", "--steps", "2", "--output", str(run), *common])
    assert (folder / COLOUR_HEAD_FILE).is_file()
    assert json.loads((folder / "training_args.json").read_text())["class_colour_adversary"] == 0.5
    with open(run / "log.csv") as handle:
        rows = [json.loads(row["parts"]) for row in csv.DictReader(handle)]
    assert "loss_colour_adversary" in rows[0] and "loss_colour_adversary" not in rows[1]  # panoptic, then referring


def test_the_colour_loss_and_the_class_colour_adversary_do_not_go_together(capsys):
    from hyperseg_lite.training.arguments import parse_arguments

    for flags, message in (
        (["--class-colour-adversary", "1", "--colour-loss-weight", "1"], "opposite ways"),
        (["--class-colour-adversary", "-1"], "0 \\(off\\) or positive"),
    ):
        with pytest.raises(SystemExit):
            parse_arguments(["--output", "unused", *flags])
        assert re.search(message, capsys.readouterr().err)
