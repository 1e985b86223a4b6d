"""What keeping the LLM's prefix keys and values on an encoded image saves a second prompt (``reuse_prefix``).

    OMP_NUM_THREADS=1 python benchmarks/prefix_cache.py --checkpoint assets/hyperseg-lite

Every prompt about an image opens with the same tokens (conversation opening, image tokens, FVP tokens); the
predictor keeps the LLM's keys and values there from the first prompt and runs later prompts' LLM pass on their
own tokens only (``hyperseg_lite/modeling/prefix_cache.py``; same masks, ``tests/test_predictor.py``). The two
ways are timed alternately, call by call, in one process, so that a shared machine's drift falls on both alike.
Prints the median per call and each second prompt's share of its first prompt's time.
"""

from __future__ import annotations

from pipeline_calls import SECOND_PROMPTS, ab_setup, time_two_variants, with_attribute

CALLS = [name for pair in SECOND_PROMPTS.items() for name in pair]


def main() -> None:
    args, loaded, pipe = ab_setup(__doc__, rounds=10)

    variants = {
        "no prefix cache": with_attribute(pipe.predictor, "reuse_prefix", False),
        "prefix cache, the pipeline": with_attribute(pipe.predictor, "reuse_prefix", True),
    }
    medians = time_two_variants(args, loaded, pipe, CALLS, variants)
    print("\n| second prompt on the same image | variant | first (ms) | second (ms) | second / first |")
    print("|---|---|---|---|---|")
    for first, second in SECOND_PROMPTS.items():
        for variant in variants:
            a, b = medians[(first, variant)], medians[(second, variant)]
            print(f"| {second} | {variant} | {a:.0f} | {b:.0f} | {100 * b / a:.0f}% |")


if __name__ == "__main__":
    main()
