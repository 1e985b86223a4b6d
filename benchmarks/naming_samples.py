"""What proposing names from sampled lists besides the greedy one costs class-free naming (``naming_samples``).

    OMP_NUM_THREADS=1 python benchmarks/naming_samples.py --checkpoint assets/hyperseg-lite

``pipe.describe`` unites the names of the LLM's greedy list and of sampled lists, and keeps those that
segmentation confirms; 0 samples is the greedy list alone. Both are timed alternately, call by call, in one
process, so that a shared machine's drift falls on both alike. Prints the median per call.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from pipeline_calls import ab_setup, in_turns, pipeline_calls, print_ab_table

from hyperseg_lite.pipeline import NAMING_SAMPLES

CALLS = ["class-free naming (describe)"]


def main() -> None:
    args, loaded, pipe = ab_setup(__doc__, rounds=10)

    def samples(count: int):
        @contextmanager
        def use():
            before = pipe.naming_samples
            pipe.naming_samples = count
            try:
                yield
            finally:
                pipe.naming_samples = before

        return use

    variants = {"greedy list alone": samples(0), f"and {NAMING_SAMPLES} sampled, the pipeline": samples(NAMING_SAMPLES)}
    with torch.inference_mode():
        medians = in_turns(pipeline_calls(pipe, CALLS), args.rounds, variants)
    print(f"model: {loaded.describe()} | {torch.get_num_threads()} threads | {args.rounds} rounds")
    print_ab_table("", tuple(variants), medians, CALLS)


if __name__ == "__main__":
    main()
