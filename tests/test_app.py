"""The Gradio app: handlers without a browser, every public endpoint through gradio_client, concurrency,
and (when Debian's chromium and playwright are present) a real browser run with one screenshot per tab."""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")

from demo import build_demo  # noqa: E402
from demo import tab_interactive  # noqa: E402
from hyperseg_lite import build_random_model  # noqa: E402
from hyperseg_lite.pipeline import HyperSegPipeline  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = json.loads((ROOT / "assets" / "examples" / "examples.json").read_text())
EXAMPLE = ROOT / "assets" / "examples" / EXAMPLES["images"][0]["image"]
VIDEO = ROOT / "assets" / "examples" / EXAMPLES["video"]["video"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served():
    """The tiny random model (fast); ``HYPERSEG_APP_MODEL=embedded`` serves the shipped checkpoint instead, which
    is how the README's screenshots are taken (with ``HYPERSEG_SCREENSHOTS=assets/screenshots``)."""
    if os.environ.get("HYPERSEG_APP_MODEL") == "embedded":
        from app import load_pipeline

        return load_pipeline(None, None, None)
    return HyperSegPipeline(build_random_model("tiny", seed=0)), "nothing: random weights (tests)"


@pytest.fixture(scope="module")
def app_url(served):
    pipe, trained_on = served
    demo = build_demo(pipe, trained_on)
    port = free_port()
    demo.queue(default_concurrency_limit=2).launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True,
                                                   quiet=True, share=False, ssr_mode=False, show_error=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="module")
def pipe(served):
    return served[0]


@pytest.fixture(scope="module")
def client(app_url):
    from gradio_client import Client

    return Client(app_url, verbose=False)


def image_size(path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size


# ---------------------------------------------------------------- handlers, no browser
def test_class_threshold_slider_starts_at_the_models_own_value():
    """The slider (and the class-list examples) use the checkpoint's thresholds, per mode, not a fixed 0.5."""
    import gradio as gr

    pipe = HyperSegPipeline(build_random_model("tiny", seed=0))
    pipe.model.config.segment_threshold, pipe.model.config.semantic_threshold = 0.2, 0.4
    demo = build_demo(pipe, "tests")
    slider = next(b for b in demo.blocks.values() if isinstance(b, gr.Slider) and b.label.startswith("Score"))
    mode = next(b for b in demo.blocks.values() if isinstance(b, gr.Radio) and b.label == "Mode")
    assert slider.value == 0.2 and mode.value == "panoptic"
    on_mode = [f for f in demo.fns.values() if [c._id for c in f.inputs] == [mode._id]
               and [c._id for c in f.outputs] == [slider._id]]
    assert len(on_mode) == 1
    assert [on_mode[0].fn(m) for m in ("semantic", "instance", "panoptic")] == [0.4, 0.2, 0.2]
    examples = next(b for b in demo.blocks.values() if isinstance(b, gr.Dataset) and slider in b._components)
    assert all(row[-1] == 0.2 for row in examples.raw_samples)


def test_interactive_state_is_per_visitor(pipe):
    image = np.asarray(Image.open(EXAMPLE))
    first = tab_interactive.empty_state()
    *_, after_click = tab_interactive.click(pipe, image, first, True, 50, 60)
    assert first == tab_interactive.empty_state()  # the caller's state is never mutated
    assert after_click["regions"][0]["points"] == [[50.0, 60.0]]
    *_, after_negative = tab_interactive.click(pipe, image, after_click, False, 10, 10)
    assert after_negative["regions"][0]["labels"] == [1, 0]
    *_, undone = tab_interactive.undo(pipe, image, after_negative)
    assert undone["regions"][0]["labels"] == [1]
    two = tab_interactive.new_region(undone)
    *_, with_box = tab_interactive.add_box(pipe, image, two, "5, 5, 60, 40")
    assert len(tab_interactive.to_regions(with_box)) == 2


# ---------------------------------------------------------------- public API
def test_only_public_endpoints_are_exposed(client):
    endpoints = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert endpoints == {"/segment_classes", "/refer", "/reason", "/interactive", "/segment_video"}


def check_annotated(output, size):
    assert image_size(output["image"]) == size
    assert output["annotations"] and all(image_size(a["image"]) == size for a in output["annotations"])


def test_every_tab_endpoint_answers(client):
    from gradio_client import handle_file

    size = image_size(EXAMPLE)
    picture = handle_file(str(EXAMPLE))
    annotated, summary, files = client.predict(picture, "circle, star, sky", "semantic", 0.0, api_name="/segment_classes")
    check_annotated(annotated, size)
    assert "Found" in summary and len(files) == 2
    annotated, status, files = client.predict(picture, "the cup", 0.0, api_name="/refer")
    check_annotated(annotated, size)
    annotated, status, answer, files = client.predict(picture, "what is hot?", True, 0.0, api_name="/reason")
    check_annotated(annotated, size)
    annotated, status, files = client.predict(picture, '[{"points": [[50, 60]], "labels": [1]}, {"box": [5, 5, 90, 80]}]',
                                              api_name="/interactive")
    assert len(annotated["annotations"]) == 2 and status.startswith("2 region")
    video, files = client.predict(handle_file(str(VIDEO)), "box on the first frame", "12, 62, 68, 118", "",
                                  api_name="/segment_video")
    assert Path(video).suffix == ".mp4" and Path(video).stat().st_size > 0
    assert any(str(f).endswith(".zip") for f in files)


@pytest.mark.parametrize("args, api_name, message", [
    (("   ", 0.5), "/refer", "empty"),
    (("", True, 0.5), "/reason", "empty"),
    ((",,", "panoptic", 0.5), "/segment_classes", "class list is empty"),
    (('[{"points": [[5000, 5]], "labels": [1]}]',), "/interactive", "outside"),
    (('[{"box": [5, 5, 5, 40]}]',), "/interactive", "zero area"),
    (("not json",), "/interactive", "JSON"),
])
def test_bad_input_gives_the_intended_message(client, args, api_name, message):
    from gradio_client import handle_file

    with pytest.raises(Exception, match=message):
        client.predict(handle_file(str(EXAMPLE)), *args, api_name=api_name)


def test_bad_video_box_message(client):
    from gradio_client import handle_file

    with pytest.raises(Exception, match="four numbers"):
        client.predict(handle_file(str(VIDEO)), "box on the first frame", "1, 2", "", api_name="/segment_video")


def test_two_concurrent_clients_get_their_own_results(app_url, tmp_path):
    from gradio_client import Client, handle_file

    sizes = {"a": (70, 40), "b": (33, 90)}
    outputs = {}

    def ask(name):
        path = tmp_path / f"{name}.png"
        Image.fromarray((np.random.default_rng(len(name)).random((*sizes[name][::-1], 3)) * 255).astype(np.uint8)).save(path)
        annotated, _, _ = Client(app_url, verbose=False).predict(handle_file(str(path)), "the thing", 0.0, api_name="/refer")
        outputs[name] = image_size(annotated["image"])

    threads = [threading.Thread(target=ask, args=(n,)) for n in sizes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert outputs == sizes


# ---------------------------------------------------------------- real browser
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")
def test_every_tab_in_a_real_browser(app_url, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (python) is not installed")
    shots = Path(os.environ.get("HYPERSEG_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic"]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(app_url, wait_until="domcontentloaded")
        page.wait_for_selector("#classes-image", timeout=60_000)

        def upload(elem_id, path):
            page.locator(f"#{elem_id} input[type=file]").set_input_files(str(path))

        def run_tab(tab, prefix, text, image):
            page.get_by_role("tab", name=tab).click()
            upload(f"{prefix}-image", ROOT / "assets" / "examples" / image)
            if text is not None:
                page.locator(f"#{prefix}-text textarea").fill(text)
            page.locator(f"#{prefix}-run").click()
            page.wait_for_selector(f"#{prefix}-output img", timeout=60_000)
            page.screenshot(path=str(shots / f"{prefix}.png"), full_page=True)

        example = EXAMPLES["images"][0]
        run_tab("Open-vocabulary", "classes", example["classes"], example["classes_image"])
        run_tab("Referring", "refer", example["expression"], example["image"])
        run_tab("Reasoning", "reason", example["question"], example["question_image"])
        page.get_by_role("tab", name="Interactive").click()
        upload("interactive-image", EXAMPLE)
        page.locator("#interactive-box textarea").fill(example["box"])
        page.locator("#interactive-box-run").click()
        page.wait_for_selector("#interactive-output img", timeout=60_000)
        page.screenshot(path=str(shots / "interactive.png"), full_page=True)
        page.get_by_role("tab", name="Video").click()
        upload("video-input", VIDEO)
        page.locator("#video-box textarea").fill(EXAMPLES["video"]["box"])
        page.locator("#video-run").click()
        page.wait_for_selector("#video-output video", timeout=120_000)
        page.screenshot(path=str(shots / "video.png"), full_page=True)
        browser.close()
    assert {p.name for p in shots.glob("*.png")} >= {"classes.png", "refer.png", "reason.png", "interactive.png",
                                                     "video.png"}
