"""tools/fit_question_heads.py: it adds the question heads (colour relation, category ranking) to trained weights
and fits their text heads on the frozen LLM, changing nothing else; the shipped checkpoint reads its questions."""

from __future__ import annotations

import json
import shutil

import pytest
from helpers import load_tool
from safetensors.torch import load_file, save_file

from hyperseg_lite.data.world import World
from hyperseg_lite.loading import EMBEDDED_CHECKPOINT
from hyperseg_lite.pipeline import HyperSegPipeline

HEAD_PREFIXES = ("mask_decoder.colour_relation.", "mask_decoder.category_ranking.")


def _embedded_without_the_question_heads(folder):
    """The embedded checkpoint as it was before its question heads were fitted: what the tool starts from."""
    folder.mkdir()
    for path in EMBEDDED_CHECKPOINT.iterdir():
        if path.is_file() and path.name != "model.safetensors":
            shutil.copy2(path, folder / path.name)
    state = load_file(EMBEDDED_CHECKPOINT / "model.safetensors")
    kept = {key: value for key, value in state.items() if not key.startswith(HEAD_PREFIXES)}
    save_file(kept, folder / "model.safetensors", metadata={"format": "pt"})
    config = json.loads((folder / "config.json").read_text())
    config["decoder_config"] |= {"colour_relation": False, "category_ranking": False}
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_the_fit_tool_adds_only_the_question_heads(tmp_path, capsys):
    base, out = _embedded_without_the_question_heads(tmp_path / "base"), tmp_path / "fit"
    report = load_tool("fit_question_heads").main(
        [str(base), "--output", str(out), "--heads", "colour_relation", "category_ranking"]
        + ["--questions", "12", "--expressions", "3", "--check", "4", "--steps", "20"]
    )
    old, new = load_file(base / "model.safetensors"), load_file(out / "model.safetensors")
    assert all(old[key].equal(new[key]) for key in old)
    added = set(new) - set(old)
    assert {prefix for prefix in HEAD_PREFIXES if any(key.startswith(prefix) for key in added)} == set(HEAD_PREFIXES)
    assert all(key.startswith(HEAD_PREFIXES) for key in added)
    decoder_config = json.loads((out / "config.json").read_text())["decoder_config"]
    assert decoder_config["colour_relation"] is True and decoder_config["category_ranking"] is True
    assert json.loads((out / "question_heads_fit.json").read_text()) == report
    assert report["train_questions"] == 15 and set(report["heads"]) == {"colour_relation", "category_ranking"}
    assert "gate read right" in capsys.readouterr().out
    fitted = HyperSegPipeline.from_pretrained(out).model.mask_decoder
    for head in (fitted.colour_relation.relation_head, fitted.category_ranking.gate_head):
        assert head.weight.dtype.is_floating_point and head.weight.abs().sum() > 0
    with pytest.raises(SystemExit):
        load_tool("fit_question_heads").main([str(base), "--output", str(base)])


def test_the_shipped_checkpoint_reads_the_colour_relation_off_its_questions():
    """What makes the reasoning bar of test_embedded_model.py: the shipped head says which questions ask for
    another's colour and names the anchor (the category ranking is not shipped)."""
    tool = load_tool("fit_question_heads")
    pipe = HyperSegPipeline.from_pretrained()
    config = pipe.model.config.decoder_config
    assert config.colour_relation and not config.category_ranking
    questions = tool.question_states(pipe, World("test", 0), "reasoning", 30)
    result = tool.accuracy("colour_relation", pipe.model.mask_decoder.colour_relation, questions)
    assert result["applies_to"] >= 3 and result["gate"] == 1.0 and result["value"] == 1.0, result


def test_by_default_the_tool_fits_what_ships(tmp_path):
    base = _embedded_without_the_question_heads(tmp_path / "base")
    load_tool("fit_question_heads").main(
        [str(base), "--output", str(tmp_path / "fit")] + ["--questions", "6", "--expressions", "2", "--check", "2"]
    )
    decoder_config = json.loads((tmp_path / "fit" / "config.json").read_text())["decoder_config"]
    assert decoder_config["colour_relation"] is True and decoder_config["category_ranking"] is False
