"""research/tools/recognition_gap.py separates finding masks from recognising them; it runs on the embedded model."""

from __future__ import annotations

import json

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
    assert {row["task"] for row in classes} <= {"panoptic (things)", "panoptic (stuffs)"} and classes
    for row in classes:
        assert 0.0 <= row["top1_of_best_mask"] <= 1.0 and 0.0 < row["chance_top1"] <= 1.0
    printed = capsys.readouterr().out
    assert "| referring |" in printed and "| panoptic (things) |" in printed
