"""The app as a visitor meets it: time from ``python app.py`` to a page that answers, each tab's request, and
the interactive tab's latency per click.

    python benchmarks/app.py                 # the embedded model, on 127.0.0.1 at a free port

Starts ``app.py`` in a subprocess (analytics off, no network), polls until the page answers, then calls every
public endpoint through ``gradio_client`` on the gallery's first example: median of ``--runs`` after one warm-up,
upload and download over the loopback included. The per-click figure is the interactive tab's click handler
in this process on the same model: the image is encoded once when it is loaded, the first click is made, then
the median of ``--runs`` second clicks on that image is reported (what a visitor waits for after each click,
less the browser round trip). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "assets" / "examples"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, limit_s: float = 120.0) -> float:
    began = time.perf_counter()
    while time.perf_counter() - began < limit_s:
        if process.poll() is not None:
            raise SystemExit(f"app.py exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return time.perf_counter() - began
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"app.py did not answer within {limit_s:.0f} s")


def median_ms(call, runs: int) -> float:
    call()
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        call()
        times.append(time.perf_counter() - began)
    return 1000 * statistics.median(times)


def click_latency_ms(runs: int, app_args: list[str]) -> tuple[float, float]:
    """(image load + encode, median second click) in ms, with the model ``app.py`` would load."""
    sys.path.insert(0, str(ROOT))
    from app import caveat, load_pipeline
    from demo import tab_interactive
    from demo.context import AppContext

    options = argparse.ArgumentParser()
    options.add_argument("--model")
    options.add_argument("--precision")
    options.add_argument("--random-preset")
    known, _ = options.parse_known_args(app_args)
    pipe, trained_on = load_pipeline(known.model, known.precision, known.random_preset)
    ctx = AppContext(pipe, trained_on, caveat(known.model, known.random_preset))
    spec = json.loads((EXAMPLES / "examples.json").read_text())
    image = str(EXAMPLES / spec["images"][0]["image"])
    tab_interactive.load_state(ctx, image)  # warm-up
    began = time.perf_counter()
    state = tab_interactive.load_state(ctx, image)
    loaded = time.perf_counter() - began
    state, _ = tab_interactive.click(ctx, state, "include point", 60, 220)
    times = []
    for k in range(runs):
        began = time.perf_counter()
        tab_interactive.click(ctx, state, "include point" if k % 2 else "exclude point", 120 + k, 60)
        times.append(time.perf_counter() - began)
    return 1000 * loaded, 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--app-args", nargs=argparse.REMAINDER, default=[], help="passed on to app.py")
    args = parser.parse_args()

    port = free_port()
    env = dict(
        os.environ,
        GRADIO_ANALYTICS_ENABLED="False",
        HF_HUB_OFFLINE="1",
        NO_PROXY="127.0.0.1,localhost",
        HYPERSEG_PORT=str(port),
    )
    began = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py"), *args.app_args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until_up(url, process)
        startup = time.perf_counter() - began

        from gradio_client import Client, handle_file

        client = Client(url, verbose=False)
        spec = json.loads((EXAMPLES / "examples.json").read_text())
        first = spec["images"][0]
        image = handle_file(str(EXAMPLES / first["image"]))
        rows = {
            "open-vocabulary (panoptic, 8 classes)": lambda: client.predict(
                handle_file(str(EXAMPLES / first["classes_image"])),
                first["classes"],
                "panoptic",
                0.5,
                api_name="/segment_classes",
            ),
            "referring": lambda: client.predict(image, first["expression"], 0.5, api_name="/refer"),
            "reasoning (with answer text)": lambda: client.predict(
                handle_file(str(EXAMPLES / first["question_image"])), first["question"], True, 0.5, api_name="/reason"
            ),
            "interactive (1 click + 1 box)": lambda: client.predict(
                image,
                json.dumps(
                    [{"points": [[60, 220]], "labels": [1]}, {"box": [int(v) for v in first["box"].split(",")]}]
                ),
                api_name="/interactive",
            ),
        }
        video = spec["video"]
        box = [int(v) for v in video["box"].split(",")]
        rows["video (16 frames, box on frame 0, backward + forward, H.264 out)"] = lambda: client.predict(
            video=handle_file(str(EXAMPLES / video["video"])),
            objects=json.dumps([{"frame": 0, "box": box}]),
            api_name="/segment_video",
        )
        print(
            "| measure | median (ms) |\n|---|---|\n"
            f"| start-up: `python app.py` to the page answering | {1000 * startup:.0f} |"
        )
        for name, call in rows.items():
            print(f"| {name} | {median_ms(call, args.runs):.0f} |", flush=True)
    finally:
        process.terminate()
        process.wait(timeout=30)
    loaded, click = click_latency_ms(args.runs, args.app_args)
    print(f"| interactive tab: image loaded and encoded once (in process) | {loaded:.0f} |")
    print(f"| interactive tab: second click on the same image (in process) | {click:.0f} |", flush=True)


if __name__ == "__main__":
    main()
