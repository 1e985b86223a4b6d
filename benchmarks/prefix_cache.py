"""What keeping the LLM's prefix keys and values on an encoded image saves a second prompt (``reuse_prefix``).

    OMP_NUM_THREADS=1 python benchmarks/prefix_cache.py --checkpoint assets/hyperseg-lite

Every prompt about an image opens with the same tokens (conversation opening, image tokens, FVP tokens); the
predictor keeps the LLM's keys and values there from the first prompt and runs later prompts' LLM pass on their
own tokens only (``hyperseg_lite/modeling/prefix_cache.py``; same masks, ``tests/test_predictor.py``). The two
ways are timed alternately, call by call, in one process, so that a shared machine's drift falls on both alike.
Prints the median per call and each second prompt's share of its first prompt's time.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from pipeline_calls import SECOND_PROMPTS, ab_setup, in_turns, pipeline_calls, print_ab_table

CALLS = [name for pair in SECOND_PROMPTS.items() for name in pair]


def main() -> None:
    args, loaded, pipe = ab_setup(__doc__, rounds=10)

    def reuse(enabled: bool):
        @contextmanager
        def use():
            before = pipe.predictor.reuse_prefix
            pipe.predictor.reuse_prefix = enabled
            try:
                yield
            finally:
                pipe.predictor.reuse_prefix = before

        return use

    variants = {"no prefix cache": reuse(False), "prefix cache, the pipeline": reuse(True)}
    with torch.inference_mode():
        medians = in_turns(pipeline_calls(pipe, CALLS), args.rounds, variants)
    print(f"model: {loaded.describe()} | {torch.get_num_threads()} threads | {args.rounds} rounds")
    print_ab_table("", tuple(variants), medians, CALLS)
    print("\n| second prompt on the same image | variant | first (ms) | second (ms) | second / first |")
    print("|---|---|---|---|---|")
    for first, second in SECOND_PROMPTS.items():
        for variant in variants:
            a, b = medians[(first, variant)], medians[(second, variant)]
            print(f"| {second} | {variant} | {a:.0f} | {b:.0f} | {100 * b / a:.0f}% |")


if __name__ == "__main__":
    main()
