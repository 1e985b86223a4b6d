"""What scoring the prompts after the last decoder layer only saves the pipeline (``segment(aux_scores=False)``).

    python benchmarks/last_layer_scores.py --checkpoint assets/hyperseg-lite

The earlier decoder layers' prompt scores (and their mask-shape embeddings) feed only the auxiliary training
losses; the pipeline leaves them out, with the same masks and scores (``tests/test_mask_shape.py``). The two
ways are timed alternately, call by call, in one process, so that a shared machine's drift (30% or more between
runs minutes apart here) falls on both alike. Prints the median per call (per frame for the 8-frame clips).
"""

from __future__ import annotations

from pipeline_calls import ab_setup, time_two_variants, with_attribute

CALLS = [
    "referring (1 expression)",
    "semantic (8 classes)",
    "video object tracking, per frame",
    "referring video, per frame",
    "video instances (8 classes), per frame",
]


def main() -> None:
    args, loaded, pipe = ab_setup(__doc__)
    segment = pipe.model.segment

    def scoring(aux_scores: bool):
        return with_attribute(pipe.model, "segment", lambda *a, **k: segment(*a, **{**k, "aux_scores": aux_scores}))

    variants = {"every layer scored": scoring(True), "last layer only, the pipeline": scoring(False)}
    time_two_variants(args, loaded, pipe, CALLS, variants)


if __name__ == "__main__":
    main()
