"""Fuzz every public endpoint of the app: random bytes as files, random JSON and random strings as text,
odd values as numbers and flags. Each request must get either a result or one clear sentence (never Gradio's
blank "upstream app has raised an exception"), and the server must answer a good request afterwards.

Bounded and seeded: ``FUZZ_CASES`` requests per endpoint (``HYPERSEG_FUZZ_CASES`` overrides), seed 0; the tiny
random model keeps it well under a minute on 2 cores.
"""

from __future__ import annotations

import json
import os
import random
import socket
import time
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")

from demo import build_demo  # noqa: E402
from hyperseg_lite import build_random_model  # noqa: E402
from hyperseg_lite.pipeline import HyperSegPipeline  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "assets" / "examples"
SPEC = json.loads((EXAMPLES / "examples.json").read_text())
IMAGE = EXAMPLES / SPEC["images"][0]["image"]
VIDEO = EXAMPLES / SPEC["video"]["video"]
FUZZ_CASES = int(os.environ.get("HYPERSEG_FUZZ_CASES", "25"))
GENERIC = "upstream Gradio app has raised an exception"
ODD_CHARACTERS = "\x00\x07\x1b\u202e\u202d\u200b\ufeff\ud7ff\U0001f600\n\t\"'{}[]<>&;%$\\"


@pytest.fixture(scope="module")
def client():
    from gradio_client import Client

    demo = build_demo(HyperSegPipeline(build_random_model("tiny", seed=0)), "fuzz", caveat="fuzz")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.queue(default_concurrency_limit=2).launch(
        server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, share=False, ssr_mode=False
    )
    yield Client(f"http://127.0.0.1:{port}/", verbose=False)
    demo.close()


class Fuzzer:
    """Random values of every kind an endpoint parameter can be sent, from one seeded generator."""

    def __init__(self, seed: int, folder: Path) -> None:
        self.rng = random.Random(seed)
        self.folder = folder

    def string(self) -> str:
        length = self.rng.choice([0, 1, 5, 40, 300, 3000])
        alphabet = ODD_CHARACTERS + "abc xyz,0123456789"
        return "".join(self.rng.choice(alphabet) for _ in range(length))

    def json_value(self, depth: int = 0):
        kinds = ["int", "float", "str", "bool", "null"] + (["list", "dict"] if depth < 3 else [])
        kind = self.rng.choice(kinds)
        if kind == "int":
            return self.rng.choice([0, 1, -1, 5, 10**12, self.rng.randint(-500, 500)])
        if kind == "float":
            return self.rng.choice([0.5, -3.25, 1e308, self.rng.uniform(-1e4, 1e4)])
        if kind == "str":
            return self.string()[:30]
        if kind == "bool":
            return self.rng.random() < 0.5
        if kind == "null":
            return None
        if kind == "list":
            return [self.json_value(depth + 1) for _ in range(self.rng.randint(0, 4))]
        keys = ["points", "labels", "box", "scribble", "frame", "mask", self.string()[:8]]
        return {self.rng.choice(keys): self.json_value(depth + 1) for _ in range(self.rng.randint(0, 3))}

    def text(self) -> str:
        """A random string, or random JSON as text (what the regions / objects parameters parse)."""
        return self.string() if self.rng.random() < 0.4 else json.dumps(self.json_value())

    def number(self):
        """Mostly a valid threshold, so the requests also reach the parsers and the model behind the checks."""
        if self.rng.random() < 0.7:
            return self.rng.random()
        return self.rng.choice([self.rng.uniform(-2, 2), "abc", "", True, None, 1e9, [0.5]])

    def flag(self):
        return self.rng.random() < 0.5 if self.rng.random() < 0.7 else self.rng.choice(["yes", 1, None])

    def file(self, real: Path):
        """The real file, or random bytes under a believable name."""
        from gradio_client import handle_file

        if self.rng.random() < 0.6:
            return handle_file(str(real))
        header = self.rng.choice([b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"\x00\x00\x00\x18ftypmp42", b"GIF89a"])
        data = header + bytes(self.rng.getrandbits(8) for _ in range(self.rng.choice([0, 10, 500, 5000])))
        path = self.folder / f"fuzz_{self.rng.getrandbits(32):08x}{real.suffix}"
        path.write_bytes(data)
        return handle_file(str(path))


def endpoint_calls(fuzz: Fuzzer) -> list[tuple[str, dict]]:
    calls = []
    for _ in range(FUZZ_CASES):
        calls += [
            (
                "/segment_classes",
                {
                    "image": fuzz.file(IMAGE),
                    "classes": fuzz.text(),
                    "mode": fuzz.rng.choice(["panoptic", "semantic", "instance", fuzz.string()]),
                    "threshold": fuzz.number(),
                },
            ),
            ("/refer", {"image": fuzz.file(IMAGE), "expression": fuzz.text(), "threshold": fuzz.number()}),
            (
                "/reason",
                {
                    "image": fuzz.file(IMAGE),
                    "question": fuzz.text(),
                    "explain": fuzz.flag(),
                    "threshold": fuzz.number(),
                },
            ),
            ("/interactive", {"image": fuzz.file(IMAGE), "regions": fuzz.text()}),
        ]
    for _ in range(max(2, FUZZ_CASES // 2)):  # videos cost more per request
        calls.append(
            (
                "/segment_video",
                {
                    "video": fuzz.file(VIDEO),
                    "objects": fuzz.text(),
                    "expression": fuzz.rng.choice([None, fuzz.string()]),
                    "reasoning": fuzz.flag(),
                    "threshold": fuzz.number(),
                },
            )
        )
    return calls


def test_every_endpoint_answers_random_input_with_a_sentence_and_stays_up(client, tmp_path):
    from gradio_client import handle_file

    began = time.perf_counter()
    fuzz = Fuzzer(seed=0, folder=tmp_path)
    failures, answered, refused = [], 0, 0
    for api_name, kwargs in endpoint_calls(fuzz):
        try:
            client.predict(**kwargs, api_name=api_name)
            answered += 1
        except Exception as error:  # noqa: BLE001 - every refusal is inspected below
            message = str(error)
            refused += 1
            if GENERIC in message or "Traceback" in message or not message.strip() or len(message) > 1000:
                shown = {k: (str(v)[:60]) for k, v in kwargs.items()}
                failures.append(f"{api_name} {shown}: {type(error).__name__}: {message[:200]}")
    assert not failures, "requests without a clear message:\n" + "\n".join(failures)
    assert refused > 0 and answered + refused == 4 * FUZZ_CASES + max(2, FUZZ_CASES // 2)
    # still alive and still right
    annotated, _, _ = client.predict(
        image=handle_file(str(IMAGE)), expression="the cup", threshold=0.0, api_name="/refer"
    )
    assert annotated["annotations"]
    assert time.perf_counter() - began < 60
