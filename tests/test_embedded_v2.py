"""The embedded model's second design at tiny size: conv encoders, stage-1 pretraining, the subword tokenizer."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import ROOT, run_mixed

from hyperseg_lite import HyperSegConfig, HyperSegPipeline, build_random_model
from hyperseg_lite.configuration_hyperseg import conv_encoder_config
from hyperseg_lite.data.vocabulary import ALL_CLASS_NAMES, COLOUR_NAMES
from hyperseg_lite.data.world import World
from hyperseg_lite.evaluation.tasks import evaluate_explanations
from hyperseg_lite.pretrain_vision import ENCODERS_FILE, load_encoders
from hyperseg_lite.pretrain_vision import main as pretrain_vision
from hyperseg_lite.subword_tokenizer import (
    WORDS_FILE,
    real_word_fraction,
    tokenizer_words,
    train_subword_tokenizer,
    world_texts,
)
from hyperseg_lite.training.vision_targets import STUFF_COLOUR, dense_targets, fixed_scenes


@pytest.mark.parametrize("kind", ["resnet", "convnext"])
def test_conv_encoders_run_every_prompt_family(kind):
    loaded = build_random_model("tiny2", pyramid_config=conv_encoder_config(kind, [8, 16, 16, 32], [1, 1, 1, 1], 64))
    config = loaded.model.config
    assert config.num_global_tokens == (32 // 16) ** 2 == loaded.processor.num_image_tokens
    out, _, _ = run_mixed(loaded.model, loaded.processor, ["referring", "class", "region"])
    assert out.pred_masks.shape[-1] == 64 // 4 and torch.isfinite(out.pred_masks).all()


def test_conv_model_saves_and_loads(tmp_path):
    from hyperseg_lite.loading import load_model

    loaded = build_random_model("tiny2")
    loaded.model.save_pretrained(tmp_path)
    loaded.tokenizer.save_pretrained(tmp_path)
    again = load_model(tmp_path, precision="fp32", device_map="cpu")
    assert type(again.model.pyramid.backbone).__name__ == "ResNetBackbone"
    for (name, a), (_, b) in zip(loaded.model.state_dict().items(), again.model.state_dict().items()):
        assert torch.equal(a, b), name


def test_lite2_preset_uses_conv_encoders_and_3b_keeps_swin():
    lite2 = HyperSegConfig.from_preset("lite2")
    assert lite2.pyramid_config.model_type in ("resnet", "convnext")
    assert lite2.vision_config.model_type in ("resnet", "convnext")
    assert lite2.text_config.vocab_size >= 2048
    assert HyperSegConfig.from_preset("3b").pyramid_config.model_type == "swin"


def test_dense_targets_follow_the_scene():
    scene = World("train", 0, image_size=64).scene(np.random.default_rng(3))
    targets = dense_targets(scene)
    for obj in scene.objects:
        assert (targets.colours[obj.mask] == COLOUR_NAMES.index(obj.colour)).all()
        assert (targets.classes[obj.mask] == ALL_CLASS_NAMES.index(obj.category)).all()
        ys, xs = np.nonzero(obj.mask)
        edge = obj.mask & ~np.pad(obj.mask, 1)[2:, 1:-1]  # pixels whose lower neighbour is outside
        assert targets.outline[edge].all()
    assert (targets.colours[~scene.things_mask()] == STUFF_COLOUR).all()
    assert len(targets.object_categories) == len(scene.objects)


def test_pretrain_vision_checkpoints_resumes_from_the_folder_and_loads_into_the_model(tmp_path, capsys):
    run = tmp_path / "vision"
    common = [
        "--steps",
        "2",
        "--batch-size",
        "2",
        "--pool-size",
        "4",
        "--eval-scenes",
        "4",
        "--probe-scenes",
        "8",
        "--save-every",
        "1",
        "--eval-every",
        "2",
        "--threads",
        "1",
    ]
    metrics = pretrain_vision(["--preset", "tiny2", "--output", str(run), *common])
    assert {"shape_probe", "thing_miou", "token_class_acc", "gates_met"} <= set(metrics)
    assert json.loads((run / "args.json").read_text())["preset"] == "tiny2"
    with pytest.raises(SystemExit):  # a second run into the same folder is refused
        pretrain_vision(["--preset", "tiny", "--output", str(run), *common])
    with pytest.raises(SystemExit):  # a resume that changes the design is refused
        pretrain_vision(["--resume", str(run), "--pyramid", "convnext"])
    pretrain_vision(["--resume", str(run), "--steps", "3"])  # the folder alone holds the switches
    assert json.loads((run / "checkpoint" / "state.json").read_text())["step"] == 3
    rows = (run / "log.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2", "3"]

    from hyperseg_lite.modeling.modeling_hyperseg import HyperSegForSegmentation
    from hyperseg_lite.pretrain_vision import build_config

    model = HyperSegForSegmentation(build_config("tiny2", None, None))
    load_encoders(model, run / "checkpoint")
    from safetensors.torch import load_file

    saved = load_file(str(run / "checkpoint" / ENCODERS_FILE))
    assert saved and all(torch.equal(model.state_dict()[k], v) for k, v in saved.items())
    assert not any(k.startswith("global_vision.projector") for k in saved)
    with pytest.raises(ValueError, match="another preset"):
        load_encoders(HyperSegForSegmentation(build_config("tiny", None, None)), run / "checkpoint")


@pytest.fixture(scope="module")
def subword():
    texts = list(world_texts(samples_per_task=5)) + [" elephant", " moon", " kitchen"]
    return train_subword_tokenizer(texts, vocab_size=600)


@pytest.mark.parametrize(
    "text",
    [
        "der lila Elefant auf dem Mond",
        "紫色的大象 🐘🌙",
        "a\x00b\x07c\u202etxt\u200b",
        "ÆØÅ æøå — “quotes” …",
        "\U0001f600" * 5,
        "",
    ],
)
def test_subword_tokenizer_encodes_any_text_and_decodes_it_back(subword, text):
    ids = subword(text, add_special_tokens=False)["input_ids"]
    assert all(0 <= i < len(subword) for i in ids)
    assert subword.decode(ids) == text


def test_subword_tokenizer_spends_few_tokens_on_world_language(subword):
    text = "the small red star left of the blue ring"
    assert len(subword(text)["input_ids"]) < len(text.encode()) / 2  # words, not bytes (the shipped one: ~1 a word)
    seg = subword.convert_tokens_to_ids("[SEG]")
    assert subword("the ring [SEG]")["input_ids"][-1] == seg  # [SEG] stays one special token
    assert subword.eos_token == subword.pad_token == "<|endoftext|>"


def test_real_word_fraction_counts_words_outside_the_vocabulary():
    vocabulary = {"the", "ring", "is", "round"}
    assert real_word_fraction(["The ring is round."], vocabulary) == 1.0
    assert real_word_fraction(["The brin is roungape"], vocabulary) == 0.5


def test_out_of_world_expressions_are_held_out_from_training_and_name_nothing_in_the_world():
    import re

    from hyperseg_lite.data import out_of_world as oow

    assert len(set(oow.HELD_OUT_EXPRESSIONS)) >= 100
    function_words = {
        "the",
        "a",
        "on",
        "in",
        "of",
        "by",
        "with",
        "two",
        "der",
        "die",
        "ein",
        "im",
        "le",
        "la",
        "el",
        "il",
        "o",
    }
    trained = (
        {w for n in oow.TRAIN_NOUNS for w in n.split()}
        | set(oow.TRAIN_ADJECTIVES)
        | {w for p in oow.TRAIN_FOREIGN for w in p.lower().split()}
        | set(oow.TRAIN_EMOJI)
    )
    world = {name.lower() for name in ALL_CLASS_NAMES}
    for expression in oow.HELD_OUT_EXPRESSIONS:
        words = set(re.findall(r"\w+", expression.lower())) - function_words
        assert not words & trained, expression
        assert not words & world, expression
    rng = np.random.default_rng(0)
    drawn = {oow.out_of_world_expression(rng) for _ in range(500)}
    assert not drawn & set(oow.HELD_OUT_EXPRESSIONS)
    assert any(not e.isascii() for e in drawn) and any(e.startswith("the ") for e in drawn)


def test_the_object_loss_pools_each_flipped_object_under_its_own_mask_and_resumes(tmp_path):
    from safetensors.torch import load_file

    from hyperseg_lite.pretrain_vision import object_masks
    from hyperseg_lite.training.vision_heads import mask_pool

    items = fixed_scenes("val", 0, 2, 64)
    masks, categories = object_masks(items, np.array([True, False]))
    assert len(categories) == sum(len(m) for m in masks) == sum(len(i.object_categories) for i in items)
    assert torch.equal(masks[0], object_masks(items[:1])[0][0].flip(-1))  # flipped with the image
    level = torch.arange(2 * 64 * 64, dtype=torch.float32).reshape(2, 1, 64, 64)
    pooled = mask_pool([level], masks)
    first = masks[0][0].bool()
    assert torch.isclose(pooled[0, 0], level[0, 0][first].mean())  # the mean under that object's mask

    run = tmp_path / "vision"
    small = ["--steps", "2", "--batch-size", "2", "--pool-size", "4", "--eval-scenes", "2", "--probe-scenes", "4"]
    pretrain_vision(["--preset", "tiny2", "--output", str(run), "--object-loss-weight", "1", *small, "--threads", "1"])
    assert "object" in (run / "log.csv").read_text().splitlines()[0].split(",")
    assert "objects.out.weight" in load_file(str(run / "checkpoint" / "heads.safetensors"))
    args = json.loads((run / "args.json").read_text())
    assert args["object_loss_weight"] == 1.0
    pretrain_vision(["--resume", str(run), "--steps", "3"])
    del args["object_loss_weight"]  # a run started before the switch existed resumes with it off
    older = tmp_path / "older"
    pretrain_vision(["--preset", "tiny2", "--output", str(older), *small, "--threads", "1"])
    (older / "args.json").write_text(json.dumps({**args, "steps": 2}))
    pretrain_vision(["--resume", str(older), "--steps", "3"])
    assert "object" not in (older / "log.csv").read_text().splitlines()[0].split(",")


def test_stage_two_starts_from_stage_one_with_the_subword_tokenizer_and_frozen_encoders(tmp_path):
    from safetensors.torch import load_file

    from hyperseg_lite.loading import load_model
    from hyperseg_lite.train import main as train

    vision = tmp_path / "vision"
    pretrain_vision(
        [
            "--preset",
            "tiny2",
            "--output",
            str(vision),
            "--steps",
            "1",
            "--batch-size",
            "2",
            "--pool-size",
            "2",
            "--eval-scenes",
            "2",
            "--probe-scenes",
            "4",
            "--threads",
            "1",
        ]
    )
    tokenizer_dir = tmp_path / "tokenizer"
    train_subword_tokenizer(list(world_texts(samples_per_task=3)), vocab_size=270).save_pretrained(tokenizer_dir)
    (tokenizer_dir / WORDS_FILE).write_text("the\nring\nis\nround\n")
    run = tmp_path / "run"
    train(
        [
            "--preset",
            "tiny2",
            "--tokenizer",
            str(tokenizer_dir),
            "--init-vision",
            str(vision / "checkpoint"),
            "--freeze-encoders",
            "--tasks",
            "referring",
            "--steps",
            "2",
            "--batch-size",
            "1",
            "--workers",
            "0",
            "--save-every",
            "2",
            "--output",
            str(run),
        ]
    )
    trained = load_model(run / "checkpoint", precision="fp32", device_map="cpu")
    assert len(trained.tokenizer) == 270  # the subword tokenizer travels with the checkpoint
    stage1 = load_file(str(vision / "checkpoint" / ENCODERS_FILE))
    state = trained.model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in stage1.items())  # frozen encoders: exactly as pretrained
    train(["--resume", str(run), "--steps", "3"])  # the folder alone holds the switches
    resumed = load_model(run / "checkpoint", precision="fp32", device_map="cpu")
    assert tokenizer_words(resumed.tokenizer) == {"the", "ring", "is", "round"}  # the gate's words travel too
    pipe = HyperSegPipeline(resumed, max_new_tokens=4)
    gate = evaluate_explanations(pipe, World("test", 0), 2)
    assert gate["explanations"] == 2 and 0.0 <= gate["explanation_real_words"] <= 1.0
    assert evaluate_explanations(HyperSegPipeline(build_random_model("tiny2")), World("test", 0), 2) == {}

    # --pyramid-lr-scale: the pyramid's weights learn on, its BatchNorm statistics and the global tower do not
    tuned = train(
        ["--init", str(run / "checkpoint"), "--freeze-encoders", "--pyramid-lr-scale", "0.5", "--lr", "1e-2"]
        + ["--tasks", "referring", "--steps", "2", "--batch-size", "1", "--workers", "0", "--save-every", "2"]
        + ["--output", str(tmp_path / "tuned")]
    )
    after = load_model(tuned, precision="fp32", device_map="cpu").model.state_dict()
    pyramid = [k for k in stage1 if k.startswith("pyramid.")]
    assert any(not torch.equal(after[k], stage1[k]) for k in pyramid if k.endswith(".weight"))
    assert all(torch.equal(after[k], stage1[k]) for k in pyramid if "running_" in k)
    assert all(torch.equal(after[k], v) for k, v in stage1.items() if k.startswith("global_vision.encoder."))

    # --init with --init-vision: trained weights read new stage-1 encoders (a warm start of stage 2)
    warm = train(
        ["--init", str(tuned), "--init-vision", str(vision / "checkpoint"), "--freeze-encoders", "--lr", "1e-5"]
        + ["--tasks", "referring", "--steps", "1", "--batch-size", "1", "--workers", "0", "--save-every", "1"]
        + ["--output", str(tmp_path / "warm")]
    )
    swapped = load_model(warm, precision="fp32", device_map="cpu")
    state = swapped.model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in stage1.items())  # the encoders are stage 1's, not tuned's
    assert any(not torch.equal(after[k], stage1[k]) for k in pyramid)
    llm = [k for k in state if k.startswith("llm.") and k.endswith(".weight")]
    assert llm and all(torch.allclose(state[k], after[k], atol=1e-3) for k in llm)  # the rest is tuned's
    assert len(swapped.tokenizer) == 270

    # --pixel-decoder-lr-scale 0: the pixel decoder stays as it came while the parts after it learn
    held = train(
        ["--init", str(run / "checkpoint"), "--freeze-encoders", "--pixel-decoder-lr-scale", "0", "--lr", "1e-2"]
        + ["--tasks", "referring", "--steps", "2", "--batch-size", "1", "--workers", "0", "--save-every", "2"]
        + ["--output", str(tmp_path / "held")]
    )
    after, before = load_model(held, precision="fp32", device_map="cpu").model.state_dict(), resumed.model.state_dict()
    decoder = [k for k in before if k.startswith("pixel_decoder.")]
    assert decoder and all(torch.equal(after[k], before[k]) for k in decoder)
    assert any(not torch.equal(after[k], before[k]) for k in before if k.startswith("mask_decoder."))


def test_describe_samples_teach_the_class_list_through_the_text_loss_alone(tiny):
    from hyperseg_lite.training.batching import collate, sample_items

    sample = World("train", 0, image_size=64).sample("describe", 0)
    assert sample.answer == ", ".join(sample.class_names) + "."
    assert set(sample.class_names) == {n for n in ALL_CLASS_NAMES if n in sample.answer.rstrip(".").split(", ")}
    batch = collate([sample_items(sample, tiny.processor)], tiny.processor)
    model = tiny.model.train()
    try:
        out = model(**batch)
        assert set(out.loss_dict) == {"loss_text"} and out.pred_masks is None
        out.loss.backward()
        assert model.llm.lm_head.weight.grad.abs().sum() > 0
        assert all(p.grad is None for p in model.mask_decoder.parameters())  # no decoder pass for a text prompt
    finally:
        model.zero_grad(set_to_none=True)
        model.eval()


def test_out_of_world_rate_changes_only_the_no_target_expressions():
    from hyperseg_lite.data.out_of_world import TRAIN_FOREIGN

    plain, mixed = World("train", 0, image_size=64), World("train", 0, image_size=64, out_of_world_rate=0.15)
    swapped = 0
    for index in range(80):
        a, b = plain.sample("referring", index), mixed.sample("referring", index)
        assert a.no_target == b.no_target and np.array_equal(a.image, b.image)
        if a.no_target:
            swapped += a.expression != b.expression
        else:
            assert a.expression == b.expression and np.array_equal(a.masks, b.masks)
    assert swapped > 0
    assert any(isinstance(e, str) for e in TRAIN_FOREIGN)
    with pytest.raises(ValueError, match="out_of_world_rate"):
        World("train", 0, out_of_world_rate=0.5)


def test_training_draws_hyperseg_tasks_by_default_and_describe_only_when_asked():
    from hyperseg_lite.tasks import PAPER_TASKS, TASK_NAMES
    from hyperseg_lite.training.arguments import parse_arguments

    assert "describe" in TASK_NAMES and "describe" not in PAPER_TASKS and len(PAPER_TASKS) == 9
    assert parse_arguments(["--output", "unused"]).tasks == list(PAPER_TASKS)  # old recipes: same steps
    assert "describe" in parse_arguments(["--output", "unused", "--tasks", "referring", "describe"]).tasks


def test_the_deep_colour_loss_names_each_object_colour_from_the_two_deepest_stages(tmp_path):
    from safetensors.torch import load_file

    from hyperseg_lite.pretrain_vision import DEEP_LEVELS, object_colours

    world = World("val", 0, image_size=64)
    items = fixed_scenes("val", 0, 2, 64)
    scene = world.scene(world.rng("semantic", 0))  # what fixed_scenes draws first
    assert sorted(object_colours(items[:1]).tolist()) == sorted(
        COLOUR_NAMES.index(o.colour) for o in scene.objects if o.mask.any()
    )
    run = tmp_path / "vision"
    small = ["--steps", "2", "--batch-size", "2", "--pool-size", "4", "--eval-scenes", "2", "--probe-scenes", "4"]
    small += ["--eval-every", "2", "--threads", "1"]
    pretrain_vision(["--preset", "tiny2", "--output", str(run), "--deep-colour-loss-weight", "1", *small])
    assert "deep_colour" in (run / "log.csv").read_text().splitlines()[0].split(",")
    assert "deep_colour_probe" in (run / "eval.csv").read_text().splitlines()[0].split(",")
    heads = load_file(str(run / "checkpoint" / "heads.safetensors"))
    channels = sum(HyperSegConfig.from_preset("tiny2").pyramid_config.hidden_sizes[DEEP_LEVELS])
    assert heads["deep_colours.out.weight"].shape == (len(COLOUR_NAMES), channels)  # reads the deep stages only


def test_stage_one_pretrains_the_pixel_decoder_on_frozen_encoders_and_stage_two_starts_from_it(tmp_path):
    from safetensors.torch import load_file

    from hyperseg_lite.modeling.modeling_hyperseg import HyperSegForSegmentation
    from hyperseg_lite.pretrain_vision import build_config

    small = ["--steps", "2", "--batch-size", "2", "--pool-size", "4", "--eval-scenes", "2", "--probe-scenes", "4"]
    small += ["--eval-every", "2", "--threads", "1"]
    encoders_run, decoder_run = tmp_path / "vision", tmp_path / "vision_pd"
    pretrain_vision(["--preset", "tiny2", "--output", str(encoders_run), *small])
    with pytest.raises(SystemExit):  # freezing needs encoders to start from and a pixel decoder to train
        pretrain_vision(["--preset", "tiny2", "--output", str(decoder_run), "--freeze-encoders", *small])
    stage_one = ["--init-encoders", str(encoders_run / "checkpoint"), "--freeze-encoders"]
    metrics = pretrain_vision(
        ["--preset", "tiny2", "--output", str(decoder_run), *stage_one, "--pixel-decoder-weight", "1", *small]
    )
    assert {"decoder_thing_miou", "decoder_colour_probe_s32", "decoder_shape_probe_s8"} <= set(metrics)
    header = (decoder_run / "log.csv").read_text().splitlines()[0].split(",")
    assert {"decoder_class", "level_shape", "level_colour"} <= set(header) and "class" not in header
    before = load_file(str(encoders_run / "checkpoint" / ENCODERS_FILE))
    after = load_file(str(decoder_run / "checkpoint" / ENCODERS_FILE))
    assert all(torch.equal(after[k], v) for k, v in before.items())  # the encoders stayed as pretrained
    decoder = {k: v for k, v in after.items() if k.startswith("pixel_decoder.")}
    model = HyperSegForSegmentation(build_config("tiny2", None, None))
    assert set(decoder) == {k for k in model.state_dict() if k.startswith("pixel_decoder.")}  # the model's names
    load_encoders(model, decoder_run / "checkpoint")  # what train --init-vision does
    assert all(torch.equal(model.state_dict()[k], v) for k, v in decoder.items())
    pretrain_vision(["--resume", str(decoder_run), "--steps", "3"])
    resumed = load_file(str(decoder_run / "checkpoint" / ENCODERS_FILE))
    assert all(torch.equal(resumed[k], v) for k, v in before.items())
    assert not all(torch.equal(resumed[k], v) for k, v in decoder.items())  # the pixel decoder kept training


def test_the_shipped_stage_one_weights_fill_a_lite2_model():
    """``--init-vision assets/lite2-stage1`` (the README's way past stage 1) fills the encoders and pixel decoder."""
    from safetensors.torch import load_file

    from hyperseg_lite.modeling.modeling_hyperseg import HyperSegForSegmentation
    from hyperseg_lite.pretrain_vision import build_config

    folder = ROOT / "assets" / "lite2-stage1"
    saved = load_file(str(folder / ENCODERS_FILE))
    assert {k.split(".")[0] for k in saved} == {"pyramid", "global_vision", "pixel_decoder"}
    model = HyperSegForSegmentation(build_config("lite2", None, None))
    load_encoders(model, folder)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in saved.items())
    assert (folder / "README.md").exists()
