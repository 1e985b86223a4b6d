"""The plurality head (not in the release, modeling/plurality_scores.py; measured, not shipped): it reads whether
an expression names several objects, changes no score, starts at "one object", survives a reload, learns in a
run, and the fit tool adds it beside the shipped question heads."""

from __future__ import annotations

import json

import torch
from helpers import load_tool, run_mixed

from hyperseg_lite import build_random_model, load_model
from hyperseg_lite.data.world import Sample, World
from hyperseg_lite.loading import EMBEDDED_CHECKPOINT
from hyperseg_lite.modeling.plurality_scores import PLURALITY_GROUP, PluralityHead, plurality_text_loss
from hyperseg_lite.train import main
from hyperseg_lite.training.attribute_supervision import plurality_labels


def test_switched_on_it_changes_no_score_reads_one_object_and_survives_a_reload(tmp_path):
    loaded = build_random_model("tiny", seed=0)
    model, processor = loaded.model.eval(), loaded.processor
    with torch.no_grad():
        before = run_mixed(model, processor, ["refer", "class"])[0]
    model.config.decoder_config.plurality = True
    model.mask_decoder.enable_plurality(model.config.text_config.hidden_size)
    with torch.no_grad():
        after = run_mixed(model, processor, ["refer", "class"])[0]
    assert torch.equal(after.prompt_logits, before.prompt_logits)  # no score reads it
    several = PluralityHead.several_probability(after.refer_attribute_logits[PLURALITY_GROUP])
    assert several.shape == (2, 1) and (several < 1e-3).all()  # "one object" until fitted: no union
    model.save_pretrained(tmp_path / "ckpt")
    loaded.tokenizer.save_pretrained(tmp_path / "ckpt")
    reloaded = load_model(tmp_path / "ckpt", precision="fp32", device_map="cpu").model
    assert reloaded.config.decoder_config.plurality is True and reloaded.mask_decoder.plurality is not None


def test_the_world_records_which_expressions_name_several_objects():
    world = World("val", 0)
    samples = [world.sample("referring", index) for index in range(60)]
    plural = [s for s in samples if s.names_several]
    assert plural and all(s.expression.startswith("all ") for s in plural)
    assert all(s.names_several is False for s in samples if not s.expression.startswith("all ") and not s.no_target)
    labels = plurality_labels(samples, ["refer"] * len(samples)).tolist()
    assert labels == [int(s.names_several) if s.names_several is not None else -100 for s in samples]
    question = World("val", 0).sample("reasoning", 0)
    assert plurality_labels([question, samples[0]], ["refer", "class"]).tolist() == [-100, -100]
    ignored = torch.zeros(2, 1, 2, requires_grad=True)
    assert plurality_text_loss(ignored, torch.tensor([-100, -100])) == 0  # nothing to learn: no NaN
    out_of_world = Sample("referring", expression="a toothbrush", no_target=True)
    assert plurality_labels([out_of_world], ["refer"]).tolist() == [-100]


def test_a_run_switches_it_on_and_it_learns(tmp_path):
    run = main(
        ["--preset", "tiny", "--steps", "3", "--batch-size", "2", "--lr", "1e-3", "--warmup", "0"]
        + ["--plurality", "--output", str(tmp_path / "a"), "--tasks", "referring"]
    )
    assert json.loads((run / "config.json").read_text())["decoder_config"]["plurality"] is True
    assert "loss_plurality_text" in (tmp_path / "a" / "log.csv").read_text()
    head = load_model(run, precision="fp32", device_map="cpu").model.mask_decoder.plurality
    assert head.head.weight.abs().sum() > 0  # trained away from its zero start


def test_the_fit_tool_adds_it_beside_the_shipped_heads_and_keeps_their_report(tmp_path):
    out = tmp_path / "fit"
    report = load_tool("fit_question_heads").main(
        [str(EMBEDDED_CHECKPOINT), "--output", str(out), "--heads", "plurality"]
        + ["--questions", "4", "--expressions", "12", "--check", "12", "--steps", "30"]
    )
    assert set(report["heads"]) == {"colour_relation", "plurality"}  # the shipped relation's fit stays reported
    shipped = json.loads((EMBEDDED_CHECKPOINT / "question_heads_fit.json").read_text())
    assert report["heads"]["colour_relation"] == shipped["heads"]["colour_relation"]
    assert report["heads"]["plurality"]["val"]["questions"] > 0
    config = json.loads((out / "config.json").read_text())["decoder_config"]
    assert config["plurality"] is True and config["colour_relation"] is True
