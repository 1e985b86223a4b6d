"""The two-stream pyramid (``modeling/two_stream_pyramid.py``): its shape stream reads brightness alone, and every
part of the model and of stage 1 reads the two streams as one pyramid."""

from __future__ import annotations

import json

import torch
from helpers import run_mixed

from hyperseg_lite import build_random_model
from hyperseg_lite.configuration_hyperseg import conv_encoder_config
from hyperseg_lite.modeling.two_stream_pyramid import LUMINANCE, TwoStreamPyramid
from hyperseg_lite.pretrain_vision import ENCODERS_FILE, build_config, load_encoders
from hyperseg_lite.pretrain_vision import main as pretrain_vision
from hyperseg_lite.training.vision_heads import NUM_THINGS, OUTPUTS, TwoStreamDenseHead

TINY_SHAPES = conv_encoder_config("resnet", [8, 16, 16, 32], [1, 1, 1, 1], image_size=64, num_channels=1)
TINY_COLOURS = conv_encoder_config("resnet", [4, 4, 8, 8], [1, 1, 1, 1], image_size=64)


def _tiny_two_stream():
    return build_random_model("tiny2", pyramid_config=TINY_SHAPES, pyramid_colour_config=TINY_COLOURS)


def _normalised(rgb: tuple[float, float, float], config, size: int = 64) -> torch.Tensor:
    """A flat image of one 0-255 colour, normalised as the processor does, with a square of mid grey in it."""
    image = torch.tensor(rgb).view(1, 3, 1, 1).expand(1, 3, size, size).clone()
    image[..., 16:40, 20:44] = 128.0
    mean, std = torch.tensor(config.pixel_mean).view(1, 3, 1, 1), torch.tensor(config.pixel_std).view(1, 3, 1, 1)
    return (image - mean) / std


def test_the_shape_stream_sees_brightness_not_colour():
    model = _tiny_two_stream().model.eval()
    pyramid = model.pyramid
    assert isinstance(pyramid, TwoStreamPyramid)
    orange = (200.0, 100.0, 50.0)
    luma = sum(w * c for w, c in zip(LUMINANCE, orange))
    teal = (50.0, 150.0, (luma - LUMINANCE[0] * 50.0 - LUMINANCE[1] * 150.0) / LUMINANCE[2])  # same brightness
    with torch.no_grad():
        a = pyramid(_normalised(orange, model.config))
        b = pyramid(_normalised(teal, model.config))
    for level_a, level_b, shapes in zip(a, b, pyramid.shape_channels):
        assert torch.allclose(level_a[:, :shapes], level_b[:, :shapes], atol=1e-4)  # shape stream: identical
        assert not torch.allclose(level_a[:, shapes:], level_b[:, shapes:], atol=1e-4)  # colour stream: not
    assert pyramid.channels == [s + c for s, c in zip(pyramid.shape_channels, pyramid.colour.channels)]


def test_a_grey_image_for_the_shape_stream_replaces_only_what_it_reads():
    model = _tiny_two_stream().model.eval()
    image, grey = _normalised((200.0, 100.0, 50.0), model.config), _normalised((90.0, 90.0, 90.0), model.config)
    with torch.no_grad():
        plain, replaced, of_grey = model.pyramid(image), model.pyramid(image, grey), model.pyramid(grey)
    for p, r, g, shapes in zip(plain, replaced, of_grey, model.pyramid.shape_channels):
        assert torch.allclose(r[:, :shapes], g[:, :shapes]) and torch.allclose(r[:, shapes:], p[:, shapes:])


def test_a_two_stream_model_runs_every_prompt_family_and_saves_and_loads(tmp_path):
    from hyperseg_lite.loading import load_model

    loaded = _tiny_two_stream()
    out, _, _ = run_mixed(loaded.model, loaded.processor, ["referring", "class", "region"])
    assert torch.isfinite(out.pred_masks).all()
    loaded.model.save_pretrained(tmp_path)
    loaded.tokenizer.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["pyramid_colour_config"]["hidden_sizes"] == [4, 4, 8, 8]
    again = load_model(tmp_path, precision="fp32", device_map="cpu")
    assert isinstance(again.model.pyramid, TwoStreamPyramid)
    for (name, a), (_, b) in zip(loaded.model.state_dict().items(), again.model.state_dict().items()):
        assert torch.equal(a, b), name


def test_the_dense_head_names_things_from_the_shape_stream_alone():
    head = TwoStreamDenseHead([12, 20, 24, 40], [8, 16, 16, 32]).eval()
    features = [torch.randn(1, c, 16 // 2**i, 16 // 2**i) for i, c in enumerate([12, 20, 24, 40])]
    recoloured = [f.clone() for f in features]
    for level, shapes in zip(recoloured, [8, 16, 16, 32]):
        level[:, shapes:] = torch.randn_like(level[:, shapes:])  # another colour stream
    a, b = head(features), head(recoloured)
    assert a.shape[1] == OUTPUTS
    assert torch.equal(a[:, :NUM_THINGS], b[:, :NUM_THINGS])  # colour cannot move one category against another
    assert not torch.allclose(a[:, NUM_THINGS:], b[:, NUM_THINGS:])  # stuff, colours and outlines read it


def test_stage_one_trains_two_streams_and_the_pixel_decoder_stage_builds_them_from_the_run(tmp_path):
    small = ["--steps", "2", "--batch-size", "2", "--pool-size", "4", "--eval-scenes", "2", "--probe-scenes", "4"]
    small += ["--eval-every", "2", "--threads", "1", "--preset", "tiny2"]
    encoders_run, decoder_run = tmp_path / "vision", tmp_path / "vision_pd"
    metrics = pretrain_vision(
        ["--pyramid", "two_stream", "--object-loss-weight", "1", "--output", str(encoders_run), *small]
    )
    assert {"shape_stream_probe", "held_out_pair_acc", "thing_miou"} <= set(metrics)
    config = build_config("tiny2", None, None, str(encoders_run / "checkpoint"))  # from the run's config.json
    assert config.pyramid_colour_config is not None and config.pyramid_config.num_channels == 1
    stage_one = ["--init-encoders", str(encoders_run / "checkpoint"), "--freeze-encoders"]
    metrics = pretrain_vision(["--output", str(decoder_run), *stage_one, "--pixel-decoder-weight", "1", *small])
    assert "decoder_held_out_pair_acc" in metrics
    from hyperseg_lite.modeling.modeling_hyperseg import HyperSegForSegmentation

    model = HyperSegForSegmentation(build_config("tiny2", None, None, str(decoder_run / "checkpoint")))
    load_encoders(model, decoder_run / "checkpoint")
    from safetensors.torch import load_file

    saved = load_file(str(decoder_run / "checkpoint" / ENCODERS_FILE))
    assert any(k.startswith("pyramid.colour.") for k in saved)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in saved.items())


def test_a_warm_start_takes_the_two_stream_encoders_under_trained_one_stream_weights(tmp_path):
    from safetensors.torch import load_file

    from hyperseg_lite.loading import load_model
    from hyperseg_lite.train import main as train

    small = ["--steps", "1", "--batch-size", "2", "--pool-size", "2", "--eval-scenes", "2", "--probe-scenes", "4"]
    vision = tmp_path / "vision"
    pretrain_vision(["--preset", "tiny2", "--pyramid", "two_stream", "--output", str(vision), *small, "--threads", "1"])
    trained = build_random_model("tiny2", seed=3)  # stands for the shipped one-stream weights
    trained.model.save_pretrained(tmp_path / "shipped")
    trained.tokenizer.save_pretrained(tmp_path / "shipped")
    run = train(
        ["--init", str(tmp_path / "shipped"), "--init-vision", str(vision / "checkpoint"), "--freeze-encoders"]
        + ["--tasks", "referring", "--steps", "1", "--batch-size", "1", "--workers", "0", "--save-every", "1"]
        + ["--category-attributes", "shape_stream", "--output", str(tmp_path / "warm")]
    )
    warm = load_model(run, precision="fp32", device_map="cpu").model
    assert isinstance(warm.pyramid, TwoStreamPyramid)
    assert warm.mask_decoder.attribute_sources["category"] == "shape_stream"  # trained on the shape stream
    state, before = warm.state_dict(), trained.model.state_dict()
    stage1 = load_file(str(vision / "checkpoint" / ENCODERS_FILE))
    assert all(torch.equal(state[k], v) for k, v in stage1.items())  # the new encoders, as pretrained
    assert set(state) >= {k for k in before if not k.startswith("pyramid.")}

    from hyperseg_lite.training.model_setup import with_encoders_of

    adopted, fresh = with_encoders_of(load_model(tmp_path / "shipped", precision="fp32"), vision / "checkpoint")
    assert fresh and all(k.split(".")[0] in ("pyramid", "perceiver", "pixel_decoder") for k in fresh)
    kept = adopted.model.state_dict()
    assert all(torch.equal(kept[k], v) for k, v in before.items() if k in kept and k not in fresh)  # as trained
    assert sum(k.startswith(("llm.", "mask_decoder.")) for k in kept) == sum(
        k.startswith(("llm.", "mask_decoder.")) for k in before
    )
    assert with_encoders_of(adopted, vision / "checkpoint")[1] == []  # encoders already of the run's shapes


def test_recolour_draws_each_segment_in_a_random_colour_and_keeps_its_texture():
    import numpy as np

    from hyperseg_lite.data.vocabulary import COLOURS
    from hyperseg_lite.training.colour_blind_shapes import recolour

    image = np.zeros((8, 8, 3), np.uint8)
    image[:] = COLOURS["blue"]
    image[2:6, 2:6] = COLOURS["red"]
    image[3, 3] = (np.array(COLOURS["red"]) * 0.5).astype(np.uint8)  # a darker texture pixel
    segments = np.zeros((8, 8), np.int16)
    segments[2:6, 2:6] = 1
    outs = [recolour(image, segments, np.random.default_rng(seed)) for seed in range(30)]
    for out in outs:
        assert out.shape == image.shape and out.dtype == np.uint8
        assert len(np.unique(out[segments == 0], axis=0)) == 1  # a flat segment stays flat
        assert out[3, 3].sum() < out[2, 2].sum()  # the texture's darker pixel stays darker
    hues = np.array([out[2, 2].astype(int) for out in outs])
    assert (hues.max(0) - hues.min(0) > 120).all()  # every channel of the object's colour is drawn at random


def test_a_shape_stream_of_three_channels_reads_the_image_itself():
    rgb_shapes = conv_encoder_config("resnet", [8, 16, 16, 32], [1, 1, 1, 1], image_size=64)
    model = build_random_model("tiny2", pyramid_config=rgb_shapes, pyramid_colour_config=TINY_COLOURS).model.eval()
    orange = _normalised((200.0, 100.0, 50.0), model.config)
    luma = sum(w * c for w, c in zip(LUMINANCE, (200.0, 100.0, 50.0)))
    teal = _normalised((50.0, 150.0, (luma - LUMINANCE[0] * 50.0 - LUMINANCE[1] * 150.0) / LUMINANCE[2]), model.config)
    with torch.no_grad():
        a, b, replaced = model.pyramid(orange), model.pyramid(teal), model.pyramid(orange, teal)
    shapes = model.pyramid.shape_channels[0]
    assert not torch.allclose(a[0][:, :shapes], b[0][:, :shapes], atol=1e-4)  # colour reaches this stream
    assert torch.allclose(replaced[0][:, :shapes], b[0][:, :shapes]) and torch.allclose(
        replaced[0][:, shapes:], a[0][:, shapes:]
    )


def _with_category_scores(model, source: str):
    """Turn the category attribute scores on, their mask head reading ``source`` (as ``train`` does)."""
    model.enable_attribute_scores("category", 12, source)
    return model


def test_category_scores_on_the_shape_stream_read_no_colour_stream_channel(tmp_path):
    from hyperseg_lite.loading import load_model

    loaded = _tiny_two_stream()
    model = _with_category_scores(loaded.model, "shape_stream").eval()
    assert model.attribute_dim("category") == sum(model.pyramid.shape_channels)
    pixels = _normalised((200.0, 100.0, 50.0), model.config)
    global_size = model.config.vision_config.image_size
    global_pixels = torch.zeros(1, 3, global_size, global_size)
    with torch.no_grad():
        before = model.encode_images(pixels, global_pixels).pooled_features["shape_stream"]
        for p in model.pyramid.colour.parameters():
            p.add_(torch.randn_like(p))  # another colour stream
        after = model.encode_images(pixels, global_pixels)
    assert before.shape[1] == sum(model.pyramid.shape_channels)
    assert before.shape[-2:] == after.mask_features.shape[-2:]
    assert torch.equal(before, after.pooled_features["shape_stream"])
    out, _, _ = run_mixed(model, loaded.processor, ["referring", "class", "region"])
    assert torch.isfinite(out.pred_masks).all()
    model.save_pretrained(tmp_path)
    loaded.tokenizer.save_pretrained(tmp_path)
    again = load_model(tmp_path, precision="fp32", device_map="cpu").model
    assert again.mask_decoder.attribute_sources["category"] == "shape_stream"
    assert torch.equal(
        again.state_dict()["mask_decoder.category_attributes.mask_head.1.weight"],
        model.state_dict()["mask_decoder.category_attributes.mask_head.1.weight"],
    )


def test_moving_the_category_scores_to_the_shape_stream_keeps_their_text_head():
    model = _with_category_scores(_tiny_two_stream().model, "pixel_decoder")
    heads = model.mask_decoder.category_attributes
    text_before = {k: v.clone() for k, v in heads.state_dict().items() if not k.startswith("mask_head.")}
    _with_category_scores(model, "shape_stream")
    assert model.mask_decoder.category_attributes is heads
    assert heads.mask_head[1].in_features == sum(model.pyramid.shape_channels)
    assert all(torch.equal(heads.state_dict()[k], v) for k, v in text_before.items())
    assert "shape_stream" in model.mask_decoder.pooled_sources()


def test_shape_stream_features_need_a_two_stream_pyramid():
    import pytest

    model = build_random_model("tiny2").model
    with pytest.raises(ValueError, match="two-stream"):
        model.pooled_dim("shape_stream")
