"""research/tools/decoder_probe.py follows the best mask token through every decoder layer; it runs on the embedded
model."""

from __future__ import annotations

from helpers import load_tool


def test_the_best_mask_token_is_probed_at_every_layer_and_under_its_own_mask(capsys):
    report = load_tool("decoder_probe").main(["--samples", "12"])
    assert "the LLM's mask query" in report and "mask_features under its own soft mask" in report
    layers = [name for name in report if name.startswith("layer") and name.endswith("after ffn")]
    assert len(layers) == len(report["attended fraction"]) > 1
    for name, accuracy in report.items():
        if name != "attended fraction":
            assert set(accuracy) == {"shape", "colour"} and all(0.0 <= v <= 1.0 for v in accuracy.values())
    assert all(0.0 < share <= 1.0 for share in report["attended fraction"].values())
    assert "| the LLM's mask query |" in capsys.readouterr().out
