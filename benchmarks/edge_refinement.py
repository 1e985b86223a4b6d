"""What moving mask edges onto the image's edges (``pipeline/edge_refinement.py``) costs each task.

    OMP_NUM_THREADS=2 python benchmarks/edge_refinement.py --checkpoint assets/hyperseg-lite

The pipeline with the checkpoint's edge refinement and with ``refine_edges`` off (the release's masks), timed
alternately, call by call, in one process, so that a shared machine's drift falls on both alike. Prints the
median per call (per frame for video). A checkpoint without refinement settings times the same twice.
"""

from __future__ import annotations

from pipeline_calls import ab_setup, time_two_variants, with_attribute

CALLS = [
    "referring (1 expression)",
    "semantic (8 classes)",
    "panoptic (8 classes)",
    "instance (8 classes)",
    "interactive (1 click)",
    "interactive, 2nd click on the encoded image",
    "video object tracking, per frame",
    "referring video, per frame",
    "video instances (8 classes), per frame",
]


def main() -> None:
    args, loaded, pipe = ab_setup(__doc__, rounds=10)
    variants = {
        "release edges": with_attribute(pipe, "refine_edges", False),
        "refined edges": with_attribute(pipe, "refine_edges", True),
    }
    time_two_variants(args, loaded, pipe, CALLS, variants)


if __name__ == "__main__":
    main()
