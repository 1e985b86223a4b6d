"""research/tools/shape_probe.py probes every feature level for shape and colour; it runs on the embedded model."""

from __future__ import annotations

from helpers import load_tool


def test_every_feature_level_is_probed_for_shape_and_colour(capsys):
    report = load_tool("shape_probe").main(["--samples", "8"])
    levels = [name for name in report if name != "majority"]
    assert {"backbone stage 1", "pixel decoder mask_features (stride 4)", "pixel decoder level 0 (attended)"} <= set(
        levels
    )
    assert any("decoder state" in name for name in levels)
    for name in levels:
        assert set(report[name]) == {"shape", "colour"}
        assert all(0.0 <= value <= 1.0 for value in report[name].values())
    assert 0.0 < report["majority"]["colour"] < 1.0
    assert "| backbone stage 1 |" in capsys.readouterr().out
