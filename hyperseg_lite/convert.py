"""Official HyperSeg-3B checkpoint -> hyperseg-lite (placeholder until the converter lands)."""

from __future__ import annotations

import json
from pathlib import Path


def is_official_checkpoint(folder: Path) -> bool:
    """The release's config says ``model_type: mipha_phi``; ours says ``hyperseg_lite``."""
    config = Path(folder) / "config.json"
    if not config.exists():
        return False
    return json.loads(config.read_text()).get("model_type") == "mipha_phi"


def load_official_checkpoint(folder: Path, precision: str, device_map):
    raise NotImplementedError("conversion of the official HyperSeg-3B layout is not implemented yet")
