"""The training-only shape loss: right labels, right pooling, gradients into the backbone, saved and resumed."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from hyperseg_lite import build_random_model
from hyperseg_lite.data import World
from hyperseg_lite.data.vocabulary import CATEGORIES
from hyperseg_lite.modeling.losses import SegmentationTarget
from hyperseg_lite.train import SHAPE_HEAD_FILE, main, training_step
from hyperseg_lite.training.shape_auxiliary import ShapeAuxiliary, mask_pooled, object_categories


def test_objects_get_their_shape_category_and_stuff_or_unlisted_get_none():
    target = SegmentationTarget(masks=torch.zeros(3, 4, 4, dtype=torch.bool), labels=torch.tensor([2, 0, 1]))
    names = ["star", "sky", "ring"]
    assert object_categories(names, target).tolist() == [CATEGORIES.index("ring"), CATEGORIES.index("star"), -1]
    assert object_categories(None, target).tolist() == [-1, -1, -1]


def test_features_are_averaged_over_each_mask_at_every_stage():
    coarse = torch.zeros(1, 2, 2, 2)
    coarse[0, 0, 0, 0], coarse[0, 1, 1, 1] = 4.0, 8.0
    masks = torch.zeros(1, 2, 4, 4)
    masks[0, 0, :2, :2] = 1  # exactly the top-left coarse cell
    masks[0, 1, 2:, :] = 1  # the bottom half: two coarse cells, one of them 8
    pooled = mask_pooled([coarse], masks)
    assert torch.allclose(pooled[0], torch.tensor([[4.0, 0.0], [0.0, 4.0]]))


def test_the_shape_loss_reaches_the_backbone_only_through_class_prompt_objects():
    world = World("train", 0, image_size=64)
    loaded = build_random_model("tiny", seed=0)
    aux = ShapeAuxiliary(loaded.model.pyramid.channels)
    _, parts = training_step(loaded, [world.sample("referring", 0)], "cpu", shape_aux=aux, shape_weight=1.0)
    assert "loss_shape" not in parts  # no class list, no shape labels
    loss, parts = training_step(
        loaded, [world.sample("panoptic", i) for i in range(2)], "cpu", shape_aux=aux, shape_weight=1.0
    )
    assert parts["loss_shape"] > 0
    loss.backward()
    assert aux.classifier.weight.grad.abs().sum() > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in loaded.model.pyramid.parameters())


def test_cli_logs_the_shape_loss_saves_its_head_and_resumes_with_it(tmp_path):
    out = tmp_path / "run"
    checkpoint = main(
        [
            "--preset",
            "tiny",
            "--steps",
            "2",
            "--batch-size",
            "2",
            "--output",
            str(out),
            "--tasks",
            "panoptic",
            "--shape-loss-weight",
            "1",
        ]
    )
    assert (checkpoint / SHAPE_HEAD_FILE).is_file()
    assert not any(k.startswith("classifier") for k in json.loads((checkpoint / "config.json").read_text()))
    main(
        [
            "--output",
            str(out),
            "--resume",
            str(out),
            "--steps",
            "3",
            "--batch-size",
            "2",
            "--tasks",
            "panoptic",
            "--shape-loss-weight",
            "1",
        ]
    )
    rows = list(csv.DictReader(open(out / "log.csv")))
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
    assert all("loss_shape" in json.loads(r["parts"]) for r in rows)


def test_backbone_pretraining_changes_only_the_backbone_and_writes_a_loadable_checkpoint(tmp_path):
    from safetensors.torch import load_file

    from hyperseg_lite import load_model
    from hyperseg_lite.pretrain_shapes import main as pretrain

    loaded = build_random_model("tiny", seed=0)
    loaded.model.save_pretrained(tmp_path / "init")
    loaded.tokenizer.save_pretrained(tmp_path / "init")
    before = load_file(tmp_path / "init" / "model.safetensors")
    checkpoint = pretrain(
        ["--init", str(tmp_path / "init"), "--steps", "2", "--batch-size", "2", "--output", str(tmp_path / "out")]
    )
    after = load_file(checkpoint / "model.safetensors")
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("pyramid.") for k in changed)
    assert (checkpoint / "shape_head.safetensors").is_file()
    assert load_model(checkpoint, precision="fp32", device_map="cpu").model.config.preset == "tiny"
    rows = list(csv.DictReader(open(tmp_path / "out" / "log.csv")))
    assert len(rows) == 2 and all(0.0 <= float(r["accuracy"]) <= 1.0 for r in rows)


def test_with_a_mask_shape_embedding_the_shape_loss_teaches_it_from_the_true_outlines():
    from hyperseg_lite.training.shape_auxiliary import MaskShapeAuxiliary

    world = World("train", 0, image_size=64)
    loaded = build_random_model("tiny", seed=0)
    loaded.model.mask_decoder.enable_mask_shape()
    aux = MaskShapeAuxiliary(loaded.model.config.decoder_config.hidden_dim)
    loss, parts = training_step(
        loaded, [world.sample("panoptic", i) for i in range(2)], "cpu", shape_aux=aux, shape_weight=1.0
    )
    assert parts["loss_shape"] > 0
    loss.backward()
    encoder = loaded.model.mask_decoder.mask_shape
    # the embedding starts at zero, so on this first step the loss moves its last layer and the classifier's bias
    assert encoder.out.weight.grad.abs().sum() > 0 and aux.classifier.bias.grad.abs().sum() > 0


def _tiny_checkpoint(path, mask_shape: bool):
    loaded = build_random_model("tiny", seed=0)
    if mask_shape:
        loaded.model.config.decoder_config.mask_shape_embedding = True
        loaded.model.mask_decoder.enable_mask_shape()
    loaded.model.save_pretrained(path)
    loaded.tokenizer.save_pretrained(path)
    return path


def test_mask_shape_pretraining_changes_only_the_embedding_and_train_init_continues_its_head(tmp_path):
    from safetensors.torch import load_file

    from hyperseg_lite.pretrain_shapes import main as pretrain

    init = _tiny_checkpoint(tmp_path / "init", mask_shape=True)
    before = load_file(init / "model.safetensors")
    checkpoint = pretrain(
        [
            "--init",
            str(init),
            "--part",
            "mask-shape",
            "--steps",
            "3",
            "--batch-size",
            "4",
            "--lr",
            "1e-2",
            "--warmup",
            "0",
            "--output",
            str(tmp_path / "out"),
        ]
    )
    after = load_file(checkpoint / "model.safetensors")
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("mask_decoder.mask_shape.") for k in changed)
    assert json.loads((checkpoint / "pretrain_state.json").read_text())["part"] == "mask-shape"
    head = load_file(checkpoint / SHAPE_HEAD_FILE)

    # a multi-task cycle started from it goes on with that head when asked (a near-zero rate leaves it where it
    # was), else starts a fresh one, as the cycles before the pretraining did
    common = [
        "--init",
        str(checkpoint),
        "--steps",
        "1",
        "--batch-size",
        "2",
        "--tasks",
        "panoptic",
        "--shape-loss-weight",
        "1",
        "--lr",
        "1e-12",
        "--new-parts-lr-scale",
        "1",
    ]
    continued = load_file(
        main(common + ["--continue-shape-head", "--output", str(tmp_path / "go_on")]) / SHAPE_HEAD_FILE
    )
    assert all(torch.allclose(continued[k], head[k], atol=1e-6) for k in head)
    fresh = load_file(main(common + ["--output", str(tmp_path / "fresh")]) / SHAPE_HEAD_FILE)
    assert not torch.allclose(fresh["classifier.weight"], head["classifier.weight"], atol=1e-3)
    with pytest.raises(SystemExit):  # nothing to continue from
        main(
            [
                "--preset",
                "tiny",
                "--steps",
                "1",
                "--shape-loss-weight",
                "1",
                "--continue-shape-head",
                "--output",
                str(tmp_path / "none"),
            ]
        )


def test_mask_shape_pretraining_needs_a_model_with_the_embedding(tmp_path, capsys):
    from hyperseg_lite.pretrain_shapes import main as pretrain

    init = _tiny_checkpoint(tmp_path / "init", mask_shape=False)
    with pytest.raises(SystemExit):
        pretrain(["--init", str(init), "--part", "mask-shape", "--steps", "1", "--output", str(tmp_path / "out")])
    assert "no mask-shape embedding" in capsys.readouterr().err


def test_a_shape_head_of_the_other_kind_or_none_is_not_loaded(tmp_path):
    from safetensors.torch import save_file

    from hyperseg_lite.training.shape_auxiliary import MaskShapeAuxiliary, load_shape_head

    head = MaskShapeAuxiliary(16)
    assert not load_shape_head(head, None) and not load_shape_head(head, tmp_path)
    save_file(ShapeAuxiliary([8, 4]).state_dict(), tmp_path / SHAPE_HEAD_FILE)  # a backbone head: 12 inputs
    assert not load_shape_head(head, tmp_path)
    same = MaskShapeAuxiliary(16)
    save_file(same.state_dict(), tmp_path / SHAPE_HEAD_FILE)
    assert load_shape_head(head, tmp_path) and torch.equal(head.classifier.weight, same.classifier.weight)


def test_shape_head_accuracy_tool_measures_the_head_beside_a_checkpoint_and_refuses_without_one(tmp_path, capsys):
    from helpers import load_tool

    from hyperseg_lite.pretrain_shapes import main as pretrain

    tool = load_tool("shape_head_accuracy")
    init = _tiny_checkpoint(tmp_path / "init", mask_shape=True)
    with pytest.raises(SystemExit):  # no head beside the weights yet
        tool.main(["--checkpoint", str(init), "--samples", "4"])
    assert "shape_head.safetensors" in capsys.readouterr().err
    checkpoint = pretrain(
        [
            "--init",
            str(init),
            "--part",
            "mask-shape",
            "--steps",
            "1",
            "--batch-size",
            "2",
            "--output",
            str(tmp_path / "out"),
        ]
    )
    out = tmp_path / "acc.json"
    report = tool.main(["--checkpoint", str(checkpoint), "--samples", "6", "--json", str(out)])
    assert report["objects"] > 0 and 0.0 <= report["accuracy"] <= 1.0 and report["cross_entropy"] > 0
    assert json.loads(out.read_text())["objects"] == report["objects"]


def test_head_only_fits_a_head_to_the_fixed_embedding_and_the_next_cycle_continues_it(tmp_path):
    """A checkpoint without its head (the shipped one before, or a lost runs folder) gets one without any weight of
    the model moving, and ``train --continue-shape-head`` then starts from that head."""
    from safetensors.torch import load_file

    from hyperseg_lite.pretrain_shapes import main as pretrain

    init = _tiny_checkpoint(tmp_path / "init", mask_shape=True)
    before = load_file(init / "model.safetensors")
    checkpoint = pretrain(
        [
            "--init",
            str(init),
            "--part",
            "mask-shape",
            "--head-only",
            "--steps",
            "6",
            "--batch-size",
            "4",
            "--lr",
            "5e-2",
            "--warmup",
            "0",
            "--output",
            str(tmp_path / "out"),
        ]
    )
    after = load_file(checkpoint / "model.safetensors")
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    rows = list(csv.DictReader(open(tmp_path / "out" / "log.csv")))
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])  # the head learns on the fixed features
    assert json.loads((checkpoint / "pretrain_state.json").read_text())["head_only"] is True
    head = load_file(checkpoint / SHAPE_HEAD_FILE)
    continued = load_file(
        main(
            [
                "--init",
                str(checkpoint),
                "--steps",
                "1",
                "--batch-size",
                "2",
                "--tasks",
                "panoptic",
                "--shape-loss-weight",
                "1",
                "--lr",
                "1e-12",
                "--new-parts-lr-scale",
                "1",
                "--continue-shape-head",
                "--output",
                str(tmp_path / "go_on"),
            ]
        )
        / SHAPE_HEAD_FILE
    )
    assert all(torch.allclose(continued[k], head[k], atol=1e-6) for k in head)


def test_shipping_carries_the_shape_head_and_the_word_list_and_never_leaves_a_stale_one(tmp_path):
    from helpers import load_tool
    from safetensors.torch import load_file, save_file

    from hyperseg_lite.training.shape_auxiliary import MaskShapeAuxiliary

    ship = load_tool("ship_checkpoint")
    with_head = _tiny_checkpoint(tmp_path / "with_head", mask_shape=True)
    head = MaskShapeAuxiliary(8).state_dict()
    save_file(head, with_head / SHAPE_HEAD_FILE)
    out = tmp_path / "shipped"
    ship.main([str(with_head), "--output", str(out)])
    assert torch.equal(load_file(out / SHAPE_HEAD_FILE)["classifier.weight"], head["classifier.weight"])
    (with_head / "words.txt").write_text("red\nstar\n")  # a subword tokenizer's vocabulary, for the real-word gate
    (with_head / "category_head_refit.json").write_text("{}\n")  # what tools/refit_category_head.py did
    (with_head / "question_heads_fit.json").write_text("{}\n")  # what tools/fit_question_heads.py did
    ship.main([str(with_head), "--output", str(out)])
    assert (out / "words.txt").read_text() == "red\nstar\n"
    assert (out / "category_head_refit.json").read_text() == "{}\n"
    assert (out / "question_heads_fit.json").read_text() == "{}\n"
    ship.main([str(_tiny_checkpoint(tmp_path / "no_head", mask_shape=True)), "--output", str(out)])
    assert not (out / SHAPE_HEAD_FILE).exists()  # the old head belonged to other weights
    assert not (out / "words.txt").exists()  # ... and the old vocabulary to another tokenizer
    assert not (out / "category_head_refit.json").exists()  # ... and the refit report to another head
    assert not (out / "question_heads_fit.json").exists()
    assert (out / "model.safetensors").is_file()
