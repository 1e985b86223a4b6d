"""HyperSeg-3B speed and memory: referring query on a 1024-px image and one video frame, per precision.

    python benchmarks/hyperseg3b.py                          # on a CUDA GPU: 3b at fp32, bf16, 4bit
    python benchmarks/hyperseg3b.py --preset lite --precisions fp32 --runs 5   # CPU smoke run
    python benchmarks/hyperseg3b.py --precisions bf16 --cuda-graphs          # + replay from a CUDA graph

Random weights with the release's shapes (the ``3b`` preset). Reports the median of ``--runs`` timed runs after
``--warmup``, the peak GPU memory (or peak process RSS on CPU), the forward FLOPs (``FlopCounterMode``) and the
compute floor = FLOPs / device peak (``--peak-tflops``, default 989 = H100 SXM dense bf16; fp32 uses 67).
The image features are computed once per image: a second prompt on the same image (``features.select``) only
pays the LLM and decoder ("second prompt" column). The prompt layout is read from the CPU ids before timing, as
the pipeline does, so the timed forward never waits on a device-to-host read.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from hyperseg_lite import build_random_model, load_model
from hyperseg_lite.modeling.prompt_layout import PromptLayout
from hyperseg_lite.modeling.temporal_adapter import TemporalState
from hyperseg_lite.prompts import referring_prompt, video_reasoning_prompt

PEAK_TFLOPS = {"bf16": 989.0, "fp16": 989.0, "4bit": 989.0, "8bit": 989.0, "fp32": 67.0}


def build(preset: str, precision: str, device: str):
    loaded = build_random_model(preset, seed=0)
    if precision in ("4bit", "8bit") or device == "cuda":
        with tempfile.TemporaryDirectory() as folder:  # quantization happens at load time, as for users
            loaded.model.save_pretrained(folder)
            loaded.tokenizer.save_pretrained(folder)
            del loaded
            return load_model(folder, precision=precision, device_map=device)
    return loaded


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def cuda_graphed(step):
    """Capture ``step`` (fixed inputs) in one CUDA graph and return its replay: one launch instead of thousands.

    Possible only because the forward neither reads values back nor copies from host memory (``PromptLayout``).
    """
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):  # warm-up on a side stream, as capture requires
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    return graph.replay


def measure(loaded, device: str, runs: int, warmup: int, video: bool, graphs: bool = False) -> dict:
    model, processor = loaded.model, loaded.processor
    # inference only; FlopCounterMode's module tracker also fails on parameters that require grad in inference mode
    model.requires_grad_(False)
    size = model.config.image_size
    dtype = model.pixel_decoder.mask_features.weight.dtype
    image = torch.randint(0, 256, (size, size, 3), dtype=torch.uint8)
    prepared = processor.prepare_image(image)
    conversation = video_reasoning_prompt() if video else referring_prompt()
    batch = processor.collate([processor.encode(conversation, expression="the person holding the red umbrella")])
    layout = PromptLayout.of(batch["input_ids"], batch["class_spans"], batch["refer_mask"])
    batch = {k: v.to(device) for k, v in batch.items()}
    pixels = prepared.pixel_values[None].to(device, dtype)
    global_pixels = prepared.global_pixel_values[None].to(device, dtype)
    state = TemporalState() if video else None

    def full():
        features = model.encode_images(pixels, global_pixels, temporal_state=state)
        out, _ = model.segment(
            features,
            batch["input_ids"],
            batch["attention_mask"],
            refer_mask=batch["refer_mask"],
            temporal_state=state,
            layout=layout,
        )
        return features, out

    with torch.inference_mode():
        if video:  # a real second frame: the state carries FVP latents and prompt sums
            state = full()[1].temporal_state
        for _ in range(warmup):
            features, _ = full()

        def second_prompt():
            return model.segment(
                features, batch["input_ids"], batch["attention_mask"], refer_mask=batch["refer_mask"], layout=layout
            )

        run_full, run_second = (cuda_graphed(full), cuda_graphed(second_prompt)) if graphs else (full, second_prompt)
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        times, second = [], []
        for _ in range(runs):
            sync(device)
            start = time.perf_counter()
            run_full()
            sync(device)
            times.append(time.perf_counter() - start)
            start = time.perf_counter()
            run_second()
            sync(device)
            second.append(time.perf_counter() - start)
        with FlopCounterMode(display=False) as counter:
            full()
    memory = (
        torch.cuda.max_memory_allocated() / 2**30
        if device == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    )
    return {
        "ms": 1000 * statistics.median(times),
        "second_ms": 1000 * statistics.median(second),
        "gflops": counter.get_total_flops() / 1e9,
        "memory_gb": memory,
        "size": size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="3b")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16", "4bit"])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--peak-tflops", type=float, default=None, help="device peak (default: H100 table)")
    parser.add_argument(
        "--cuda-graphs",
        action="store_true",
        help="also time each query replayed from a captured CUDA graph (GPU only; not 4/8-bit)",
    )
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.cuda_graphs and device != "cuda":
        parser.error("--cuda-graphs needs a CUDA GPU")
    name = torch.cuda.get_device_name() if device == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"device: {name}; preset {args.preset}; median of {args.runs} runs after {args.warmup} warm-up")
    print(
        "| precision | query | latency (ms) | second prompt, same image (ms) | GFLOPs | compute floor (ms) | "
        f"{'peak GPU memory' if device == 'cuda' else 'peak RSS'} (GB) |"
    )
    print("|---|---|---|---|---|---|---|")
    # FlopCounterMode does not see bitsandbytes' matmuls: quantized rows reuse the count of an unquantized one
    # (same architecture, same work; their floor is then the 16-bit peak they dequantize to)
    reference_gflops: dict[bool, float] = {}
    uncounted = False
    order = sorted(args.precisions, key=lambda p: p in ("4bit", "8bit"))  # unquantized first
    for precision in order:
        if precision in ("bf16", "fp16") and device == "cpu" and args.preset == "3b":
            print(f"| {precision} | - | skipped on CPU | | | | |")
            continue
        loaded = build(args.preset, precision, device)
        modes = [False, True] if args.cuda_graphs and precision not in ("4bit", "8bit") else [False]
        for video, graphs in ((v, g) for g in modes for v in (False, True)):
            row = measure(loaded, device, args.runs, args.warmup, video, graphs)
            gflops = row["gflops"]
            if precision in ("4bit", "8bit"):
                if video in reference_gflops:
                    gflops = max(gflops, reference_gflops[video])
                else:
                    uncounted = True
            else:
                reference_gflops.setdefault(video, gflops)
            peak = args.peak_tflops or PEAK_TFLOPS[precision]
            floor = gflops / (peak * 1e3) * 1e3
            query = f"video frame ({row['size']} px)" if video else f"referring {row['size']} px"
            label = f"{precision} + CUDA graph" if graphs else precision
            print(
                f"| {label} | {query} | {row['ms']:.1f} | {row['second_ms']:.1f} | {gflops:.3g} | "
                f"{floor:.3g} | {row['memory_gb']:.2f} |"
            )
        del loaded
        if device == "cuda":
            torch.cuda.empty_cache()
    if uncounted:
        print("\n(quantized rows without an unquantized run: their GFLOPs miss the bitsandbytes matmuls)")


if __name__ == "__main__":
    main()
