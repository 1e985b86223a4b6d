"""hyperseg-lite demo: five tabs over one shared model.

    python app.py                                   # the embedded model (no network needed)
    python app.py --model weic22/HyperSeg-3B --precision 4bit
    HYPERSEG_MODEL=... HYPERSEG_PRECISION=bf16 python app.py   # as a Space would set them

On a Hugging Face Space (README front matter, docs/app.md): the host and port come from Gradio's own variables,
handlers take a ZeroGPU slot when the ``spaces`` package is installed, gallery examples run on first use.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from huggingface_hub import metadata_load  # noqa: E402

from demo import build_demo  # noqa: E402
from hyperseg_lite import build_random_model, load_model  # noqa: E402
from hyperseg_lite.loading import EMBEDDED_CHECKPOINT, CheckpointNotFound  # noqa: E402
from hyperseg_lite.pipeline import HyperSegPipeline  # noqa: E402

EMBEDDED_CAVEAT = (
    "This model knows only hyperseg-lite's procedural shapes world (coloured shapes on simple "
    "backgrounds): on real photos its masks are guesses."
)


def card_trained_on(folder) -> str | None:
    """What a local checkpoint's model card says it was trained on (``trained_on`` in its YAML header), if it says."""
    card = Path(folder) / "README.md"
    return (metadata_load(card) or {}).get("trained_on") if card.is_file() else None


def load_pipeline(model: str | None, precision: str | None, random_preset: str | None):
    """The pipeline and a line saying what the model was trained on (``caveat`` says if it is the embedded one)."""
    if random_preset:
        return HyperSegPipeline(build_random_model(random_preset)), "nothing: random weights (for testing the app)"
    try:
        loaded = load_model(model, precision=precision)
    except CheckpointNotFound as error:
        if model is not None:
            raise SystemExit(f"error: {error}") from None
        print(f"note: {error}\nnote: starting with an untrained 'lite' model so the app still runs.")
        return HyperSegPipeline(
            build_random_model("lite")
        ), "nothing yet: untrained 'lite' weights (no embedded checkpoint found)"
    folder = EMBEDDED_CHECKPOINT if model is None else Path(model)
    trained_on = getattr(loaded.model.config, "trained_on", None) or (folder.is_dir() and card_trained_on(folder))
    return HyperSegPipeline(loaded), trained_on or "see the checkpoint's model card"


def caveat(model: str | None, random_preset: str | None) -> str | None:
    """The line under every result: the embedded (and the random) model know only the shapes world, at best."""
    return EMBEDDED_CAVEAT if model is None else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--model",
        default=os.environ.get("HYPERSEG_MODEL") or None,
        help="checkpoint folder or hub id (default: the embedded model)",
    )
    parser.add_argument(
        "--precision",
        default=os.environ.get("HYPERSEG_PRECISION") or None,
        choices=["fp32", "bf16", "fp16", "8bit", "4bit"],
    )
    parser.add_argument(
        "--random-preset",
        default=os.environ.get("HYPERSEG_RANDOM_PRESET") or None,
        help="skip loading and use random weights of this preset (tests)",
    )
    # a Space sets GRADIO_SERVER_NAME=0.0.0.0 (and the port): honour it, as launch() would without these flags
    parser.add_argument(
        "--host", default=os.environ.get("HYPERSEG_HOST") or os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1")
    )
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("HYPERSEG_PORT") or os.environ.get("GRADIO_SERVER_PORT", "7860"))
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    pipe, trained_on = load_pipeline(args.model, args.precision, args.random_preset)
    demo = build_demo(pipe, trained_on, caveat=caveat(args.model, args.random_preset))
    demo.queue(default_concurrency_limit=2).launch(
        server_name=args.host,
        server_port=args.port,
        share=False,
        max_file_size="50mb",
        footer_links=["api"],
        ssr_mode=False,
    )


if __name__ == "__main__":
    main()
