"""Per-task latency of the pipeline, end to end (image decode excluded, pre/post-processing included).

    python benchmarks/pipeline.py --preset lite            # random weights of the lite configuration
    python benchmarks/pipeline.py --checkpoint PATH        # a trained checkpoint

Image tasks on a 256x256 image; video tasks report the time per frame over an 8-frame clip. A second prompt on
an image already encoded (``pipe.encode``: the interactive tab's next click, a second expression) is timed too,
and reported as a share of the first prompt's time.
Median of ``--runs`` rounds after one warm-up, every task once per round: a shared machine's speed drifts by 30%
or more within a minute, and interleaving spreads that drift over all tasks instead of charging it to whichever
task was running. Prints a markdown table.
"""

from __future__ import annotations

import argparse

import torch
from pipeline_calls import SECOND_PROMPTS, in_turns, pipeline_calls

from hyperseg_lite import build_random_model, load_model
from hyperseg_lite.pipeline import HyperSegPipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="lite")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    loaded = load_model(args.checkpoint) if args.checkpoint else build_random_model(args.preset)
    pipe = HyperSegPipeline(loaded)
    calls = pipeline_calls(pipe, size=args.size)
    with torch.inference_mode():
        medians = in_turns(calls, args.runs)
    print(
        f"model: {loaded.describe()} | {torch.get_num_threads()} threads | image {args.size}x{args.size} | "
        f"{args.runs} rounds"
    )
    print("| task | median latency (ms) |")
    print("|---|---|")
    for name, (_, per) in calls.items():
        ms = medians[(name, "")]
        rate = f" ({1000 / ms:.1f} frames/s)" if per > 1 else ""
        print(f"| {name} | {ms:.0f}{rate} |")
    print("\n| second prompt on the same image | first (ms) | second (ms) | second / first |\n|---|---|---|---|")
    for first, second in SECOND_PROMPTS.items():
        a, b = medians[(first, "")], medians[(second, "")]
        print(f"| {second} | {a:.0f} | {b:.0f} | {100 * b / a:.0f}% |")


if __name__ == "__main__":
    main()
