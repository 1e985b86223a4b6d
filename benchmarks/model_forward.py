"""Forward latency and peak memory of the model presets (issue: model package).

CPU: ``tiny`` and ``lite`` in fp32 (one referring prompt, batch 1, image at the preset's size).
GPU (when CUDA is present): also ``3b`` in bf16 and 4-bit, with random weights of the release's shapes.

    python benchmarks/model_forward.py                 # CPU presets
    python benchmarks/model_forward.py --presets 3b    # on a GPU

Prints a markdown table: median of ``--runs`` timed runs after ``--warmup`` runs.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import torch

from hyperseg_lite import build_random_model
from hyperseg_lite.prompts import referring_prompt


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench(preset: str, precision: str, device: str, runs: int, warmup: int) -> dict:
    loaded = build_random_model(preset, seed=0)
    model, processor = loaded.model, loaded.processor
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}.get(precision, torch.float32)
    if precision == "4bit":
        from hyperseg_lite.loading import NOT_QUANTIZED  # noqa: F401  (documented path: load_model(..., "4bit"))

        raise SystemExit("4-bit timing goes through load_model on a saved checkpoint; see benchmarks/hyperseg3b.py")
    model = model.to(device=device, dtype=dtype)
    size = model.config.image_size
    image = torch.randint(0, 256, (size, size, 3), dtype=torch.uint8)
    prepared = processor.prepare_image(image)
    batch = processor.collate([processor.encode(referring_prompt(), expression="the small red star left of the ring")])
    inputs = dict(
        pixel_values=prepared.pixel_values[None].to(device, dtype),
        global_pixel_values=prepared.global_pixel_values[None].to(device, dtype),
        input_ids=batch["input_ids"].to(device),
        attention_mask=batch["attention_mask"].to(device),
        refer_mask=batch["refer_mask"].to(device),
    )
    times = []
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with torch.inference_mode():
        for i in range(warmup + runs):
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            model(**inputs)
            if device == "cuda":
                torch.cuda.synchronize()
            if i >= warmup:
                times.append(time.perf_counter() - start)
    memory = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else peak_rss_mb()
    return {
        "preset": preset,
        "precision": precision,
        "device": device,
        "params_m": loaded.num_parameters / 1e6,
        "median_ms": 1000 * statistics.median(times),
        "memory_mb": memory,
        "memory_kind": "peak GPU allocated" if device == "cuda" else "peak process RSS",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["tiny", "lite"])
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(
        f"device: {device} "
        f"({torch.cuda.get_device_name() if device == 'cuda' else f'{torch.get_num_threads()} CPU threads'})"
    )
    print("| preset | precision | params (M) | forward median (ms) | memory (MB) |")
    print("|---|---|---|---|---|")
    for preset in args.presets:
        row = bench(preset, args.precision, device, args.runs, args.warmup)
        print(
            f"| {row['preset']} | {row['precision']} | {row['params_m']:.2f} | {row['median_ms']:.1f} | "
            f"{row['memory_mb']:.0f} ({row['memory_kind']}) |"
        )


if __name__ == "__main__":
    main()
