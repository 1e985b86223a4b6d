"""research/tools/recognition_gap.py separates finding masks from recognising them; it runs on the embedded model."""

from __future__ import annotations

import json

import numpy as np
from helpers import load_tool


def _tool():
    return load_tool("recognition_gap")


def test_reports_chosen_against_oracle_and_top1_against_chance(tmp_path, capsys):
    out = tmp_path / "gap.json"
    report = _tool().main(["--samples", "3", "--tasks", "referring", "panoptic", "--json", str(out)])
    assert json.loads(out.read_text()) == report
    referring, *classes = report
    assert referring["task"] == "referring" and referring["targets"] >= 1
    assert 0.0 <= referring["chosen_miou"] <= referring["oracle_miou"] <= 1.0  # the oracle picks the best mask
    assert referring["targets"] + referring["no_target"] == 3
    assert {row["task"] for row in classes} <= {"panoptic (things)", "panoptic (stuffs)"} and classes
    for row in classes:
        assert 0.0 <= row["top1_of_best_mask"] <= 1.0 and 0.0 < row["chance_top1"] <= 1.0
    printed = capsys.readouterr().out
    assert "| referring |" in printed and "| panoptic (things) |" in printed


def test_no_target_auc_is_the_share_of_real_over_no_target_score_pairs():
    auc = _tool().score_auc
    assert auc([0.9, 0.8], [0.1, 0.2]) == 1.0 and auc([0.1], [0.9]) == 0.0
    assert auc([0.5, 0.7], [0.5, 0.6]) == 0.625  # (0.5 + 0 + 1 + 1) / 4: ties count half
    assert np.isnan(auc([0.5], []))


def test_reports_one_click_chosen_against_the_best_mask_and_what_the_uncovered_objects_get():
    (clicks,) = _tool().main(["--samples", "2", "--tasks", "interactive"])
    assert clicks["task"] == "interactive (one click)" and clicks["objects"] >= 2
    assert 0.0 <= clicks["chosen_miou"] <= clicks["oracle_miou"] <= 1.0
    assert 0.0 <= clicks["oracle_ranked_first"] <= 1.0 and 0 <= clicks["uncovered"] <= clicks["objects"]
    if clicks["uncovered"]:
        assert 0.0 <= clicks["uncovered_precision"] <= 1.0 and 0.0 <= clicks["uncovered_recall"] <= 1.0
