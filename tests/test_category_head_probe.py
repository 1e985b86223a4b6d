"""research/tools/category_head_probe.py: the category mask head refit offline, plain and colour-blind."""

from __future__ import annotations

import json

from helpers import load_tool


def test_reports_the_shipped_and_refit_heads_on_val_and_held_out_pairs(tmp_path, capsys):
    out, cache = tmp_path / "probe.json", tmp_path / "features.npz"
    args = ["--train-scenes", "4", "--scenes", "3", "--steps", "5", "--adversary-weights", "1", "--cache", str(cache)]
    report = load_tool("category_head_probe").main([*args, "--json", str(out)])
    assert json.loads(out.read_text()) == report
    assert report["objects"]["train"] > 0 and cache.exists()
    for name in ("plain", "colour adversary x 1", "colour adversary x 1, from the shipped head", "colour nullspace"):
        assert 0.0 <= report[name]["val"] <= 1.0, name
    again = load_tool("category_head_probe").main(args)  # from the cache: the same objects
    assert again["objects"] == report["objects"]
    assert "| shipped |" in capsys.readouterr().out
