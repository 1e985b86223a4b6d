"""research/tools/attribute_recognition.py: which words the referring path uses; it runs on the embedded model."""

from __future__ import annotations

import json

from helpers import load_tool


def test_reports_recognition_by_attribute_and_what_the_embedding_encodes(tmp_path, capsys):
    out = tmp_path / "attributes.json"
    report = load_tool("attribute_recognition").main(["--scenes", "2", "--json", str(out)])
    assert json.loads(out.read_text()) == report
    kinds = {"colour and shape", "shape only", "colour only"}
    heads = {"colour heads", "category heads"}  # the embedded lite2 model has attribute heads: how often they are right
    assert set(report["recognition"]) == kinds | heads
    assert sum(report["recognition"][kind]["expressions"] for kind in kinds) > 0
    for name in heads:
        assert all(0.0 <= value <= 1.0 for value in report["recognition"][name].values()), name
    embedding = report["embedding"]
    colour, shape = embedding["colour_variance_share"], embedding["shape_variance_share"]
    assert 0.0 <= colour <= 1.0 and 0.0 <= shape <= 1.0 and colour + shape <= 1.0 + 1e-6  # one-way shares
    assert -1.0 <= embedding["cosine_colour_differs"] <= 1.0
    assert "| colour only |" in capsys.readouterr().out
