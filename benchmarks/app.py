"""The app as a visitor meets it: time from ``python app.py`` to a page that answers, then each tab's request.

    python benchmarks/app.py                 # the embedded model, on 127.0.0.1 at a free port

Starts ``app.py`` in a subprocess (analytics off, no network), polls until the page answers, then calls every
public endpoint through ``gradio_client`` on the gallery's first example: median of ``--runs`` after one warm-up,
upload and download over the loopback included. Prints a markdown table.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--app-args", nargs=argparse.REMAINDER, default=[], help="passed on to app.py")
    args = parser.parse_args()

    port = free_port()
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1", NO_PROXY="127.0.0.1,localhost",
               HYPERSEG_PORT=str(port))
    began = time.perf_counter()
    process = subprocess.Popen([sys.executable, str(ROOT / "app.py"), *args.app_args], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
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
                handle_file(str(EXAMPLES / first["classes_image"])), first["classes"], "panoptic", 0.5,
                api_name="/segment_classes"),
            "referring": lambda: client.predict(image, first["expression"], 0.5, api_name="/refer"),
            "reasoning (with answer text)": lambda: client.predict(
                handle_file(str(EXAMPLES / first["question_image"])), first["question"], True, 0.5, api_name="/reason"),
            "interactive (1 click + 1 box)": lambda: client.predict(
                image, json.dumps([{"points": [[60, 220]], "labels": [1]}, {"box": [int(v) for v in first["box"].split(",")]}]),
                api_name="/interactive"),
        }
        video = spec["video"]
        rows["video (16 frames, box prompt, H.264 out)"] = lambda: client.predict(
            handle_file(str(EXAMPLES / video["video"])), "box on the first frame", video["box"], "",
            api_name="/segment_video")
        print(f"| measure | median (ms) |\n|---|---|\n| start-up: `python app.py` to the page answering | {1000 * startup:.0f} |")
        for name, call in rows.items():
            print(f"| {name} | {median_ms(call, args.runs):.0f} |", flush=True)
    finally:
        process.terminate()
        process.wait(timeout=30)


if __name__ == "__main__":
    main()
