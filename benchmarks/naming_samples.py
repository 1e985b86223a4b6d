"""What proposing names from sampled lists besides the greedy one costs class-free naming (``naming_samples``).

    OMP_NUM_THREADS=1 python benchmarks/naming_samples.py --checkpoint assets/hyperseg-lite

``pipe.describe`` unites the names of the LLM's greedy list and of sampled lists, and keeps those that
segmentation confirms; 0 samples is the greedy list alone. Both are timed alternately, call by call, in one
process, so that a shared machine's drift falls on both alike. Prints the median per call.
"""

from __future__ import annotations

from pipeline_calls import ab_setup, time_two_variants, with_attribute

from hyperseg_lite.pipeline import NAMING_SAMPLES

CALLS = ["class-free naming (describe)"]


def main() -> None:
    args, loaded, pipe = ab_setup(__doc__, rounds=10)
    variants = {
        "greedy list alone": with_attribute(pipe, "naming_samples", 0),
        f"and {NAMING_SAMPLES} sampled, the pipeline": with_attribute(pipe, "naming_samples", NAMING_SAMPLES),
    }
    time_two_variants(args, loaded, pipe, CALLS, variants)


if __name__ == "__main__":
    main()
