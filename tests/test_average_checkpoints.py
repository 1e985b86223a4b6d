"""tools/average_checkpoints.py: the mean of two checkpoints loads and holds the mean of every parameter."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import load_tool
from safetensors.torch import load_file, save_file

from hyperseg_lite import build_random_model
from hyperseg_lite.loading import load_model
from hyperseg_lite.training.shape_auxiliary import SHAPE_HEAD_FILE


@pytest.fixture(scope="module")
def tool():
    return load_tool("average_checkpoints")


def _checkpoint(folder, seed: int, shape_head: bool = True):
    loaded = build_random_model("tiny", seed=seed)
    loaded.model.save_pretrained(folder)
    loaded.tokenizer.save_pretrained(folder)
    if shape_head:
        save_file({"classifier.weight": torch.full((3, 4), float(seed))}, folder / SHAPE_HEAD_FILE)
    return folder


def test_the_mean_loads_and_holds_the_weighted_mean_of_every_parameter(tool, tmp_path):
    a, b = _checkpoint(tmp_path / "a", 0), _checkpoint(tmp_path / "b", 1)
    out = tool.main([str(a), str(b), "--output", str(tmp_path / "mean"), "--weights", "3", "1"])
    first, second = load_model(a).model.state_dict(), load_model(b).model.state_dict()
    mean = load_model(out).model.state_dict()
    assert set(mean) == set(first)
    differing = [n for n in first if first[n].is_floating_point() and not torch.equal(first[n], second[n])]
    assert differing  # two seeds: the test would prove nothing if the weights were equal
    for name in first:
        expected = (
            0.75 * first[name].float() + 0.25 * second[name].float() if first[name].is_floating_point() else first[name]
        )
        torch.testing.assert_close(mean[name].float(), expected.float())
    head = load_file(out / SHAPE_HEAD_FILE)["classifier.weight"]
    torch.testing.assert_close(head, torch.full((3, 4), 0.25))


def test_thresholds_and_the_saving_transformers_may_differ_and_the_first_checkpoint_gives_them(tool, tmp_path):
    a, b = _checkpoint(tmp_path / "a", 0), _checkpoint(tmp_path / "b", 1, shape_head=False)
    config = json.loads((b / "config.json").read_text())
    config["semantic_threshold"] = 0.3
    config["transformers_version"] = "5.99.0"  # saved by another transformers than the first: same architecture
    (b / "config.json").write_text(json.dumps(config))
    out = tool.average_checkpoints([a, b], tmp_path / "mean")
    assert json.loads((out / "config.json").read_text()) == json.loads((a / "config.json").read_text())
    assert not (out / SHAPE_HEAD_FILE).exists()  # only one input had a head: a half-mean would mislead a next cycle


def test_other_architectures_tokenizers_and_an_occupied_output_are_refused(tool, tmp_path):
    a, b = _checkpoint(tmp_path / "a", 0), _checkpoint(tmp_path / "b", 1)
    config = json.loads((b / "config.json").read_text())
    config["image_size"] = 2 * config["image_size"]
    (b / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="different configs"):
        tool.average_checkpoints([a, b], tmp_path / "mean")
    c = _checkpoint(tmp_path / "c", 2)
    (c / "tokenizer_config.json").write_text((c / "tokenizer_config.json").read_text().replace("}", ', "x": 1}', 1))
    with pytest.raises(ValueError, match="different tokenizer_config.json"):
        tool.average_checkpoints([a, c], tmp_path / "mean")
    with pytest.raises(SystemExit):  # the command line turns the refusal into a usage error, weights untouched
        tool.main([str(a), str(a), "--output", str(a)])
    assert load_model(a).model is not None
