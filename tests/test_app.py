"""The Gradio app: handlers without a browser, every public endpoint through gradio_client (named, optional
parameters; a sentence for every bad input; notices kept), concurrency, and (when Debian's chromium and
playwright are present) a real browser drawing prompts on every tab, with one screenshot per tab."""

from __future__ import annotations

import json
import logging
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

from demo import (  # noqa: E402
    build_demo,  # noqa: E402
    tab_interactive,
    tab_video,
)
from demo.answers import TARGET_COLOURS, highlighted_answer  # noqa: E402
from demo.common import clean_text, user_errors  # noqa: E402
from demo.context import AppContext  # noqa: E402
from demo.regions import parse_regions  # noqa: E402
from demo.tab_classes import plausible_class_names  # noqa: E402
from demo.video_io import read_frame  # noqa: E402
from hyperseg_lite import build_random_model  # noqa: E402
from hyperseg_lite.pipeline import HyperSegPipeline, SegmentationResult  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = json.loads((ROOT / "assets" / "examples" / "examples.json").read_text())
EXAMPLE = ROOT / "assets" / "examples" / EXAMPLES["images"][0]["image"]
OTHER_EXAMPLE = ROOT / "assets" / "examples" / EXAMPLES["images"][1]["image"]
VIDEO = ROOT / "assets" / "examples" / EXAMPLES["video"]["video"]
CAVEAT = "This model knows only the shapes world (test caveat)."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served():
    """The tiny random model (fast); ``HYPERSEG_APP_MODEL=embedded`` serves the shipped checkpoint instead, which
    is how the README's screenshots are taken (with ``HYPERSEG_SCREENSHOTS=assets/screenshots``)."""
    if os.environ.get("HYPERSEG_APP_MODEL") == "embedded":
        from app import EMBEDDED_CAVEAT, load_pipeline

        return (*load_pipeline(None, None, None), EMBEDDED_CAVEAT)
    return HyperSegPipeline(build_random_model("tiny", seed=0)), "nothing: random weights (tests)", CAVEAT


@pytest.fixture(scope="module")
def app_url(served):
    """Served as ``app.py`` serves it: Gradio's own error details off, so only our sentences reach the visitor."""
    pipe, trained_on, caveat = served
    demo = build_demo(pipe, trained_on, caveat=caveat)
    port = free_port()
    demo.queue(default_concurrency_limit=2).launch(
        server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, share=False, ssr_mode=False
    )
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="module")
def pipe(served):
    return served[0]


@pytest.fixture(scope="module")
def ctx(pipe):
    return AppContext(pipe, "tests", CAVEAT)


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
    on_mode = [
        f
        for f in demo.fns.values()
        if [c._id for c in f.inputs] == [mode._id] and [c._id for c in f.outputs] == [slider._id]
    ]
    assert len(on_mode) == 1
    assert [on_mode[0].fn(m) for m in ("semantic", "instance", "panoptic")] == [0.4, 0.2, 0.2]
    examples = next(b for b in demo.blocks.values() if isinstance(b, gr.Dataset) and slider in b._components)
    assert all(row[-1] == 0.2 for row in examples.raw_samples)


def test_no_match_sliders_start_at_the_models_own_referring_threshold():
    """Referring, reasoning and video sliders (and the text examples) start at ``config.referring_threshold``."""
    import gradio as gr

    pipe = HyperSegPipeline(build_random_model("tiny", seed=0))
    pipe.model.config.referring_threshold = 0.7
    demo = build_demo(pipe, "tests")
    sliders = [b for b in demo.blocks.values() if isinstance(b, gr.Slider) and b.label == "No-match threshold"]
    assert len(sliders) == 3 and all(s.value == 0.7 for s in sliders)
    examples = [b for b in demo.blocks.values() if isinstance(b, gr.Dataset) and set(sliders) & set(b._components)]
    assert len(examples) == 2 and all(row[-1] == 0.7 for e in examples for row in e.raw_samples)


def test_interactive_prompts_objects_undo_and_a_new_image_starts_clean(ctx):
    first = tab_interactive.load_state(ctx, str(EXAMPLE))
    state, _ = tab_interactive.click(ctx, first, "include point", 50, 60)
    assert first["objects"] == [tab_interactive.empty_object()]  # the caller's state is never mutated
    state, _ = tab_interactive.click(ctx, state, "exclude point", 10, 10)
    assert state["objects"][0]["labels"] == [1, 0] and state["masks"][0] is not None
    state, status = tab_interactive.click(ctx, state, "box (click two corners)", 5, 5)
    assert state["corner"] == [5.0, 5.0] and "opposite corner" in status
    state, status = tab_interactive.click(ctx, state, "box (click two corners)", 60, 40)
    assert state["objects"][1]["box"] == [5.0, 5.0, 60.0, 40.0]  # a box after clicks is a second object
    assert status.startswith("2 object(s)") and CAVEAT in status and len(state["files"]) == 2
    painting = np.zeros((*state["image"].shape[:2], 4), dtype=np.uint8)
    painting[100:110, 30:90, 3] = 255
    state, status = tab_interactive.add_painting(ctx, state, {"background": state["image"], "layers": [painting]})
    assert len(state["objects"]) == 3 and status.startswith("3 object(s)")
    assert all(100 <= y < 110 for _, y in state["objects"][2]["scribble"])
    state, _ = tab_interactive.undo(ctx, state)
    state, _ = tab_interactive.undo(ctx, state)  # the scribble, then its (now empty) object
    assert len(state["objects"]) == 2
    fresh = tab_interactive.load_state(ctx, str(OTHER_EXAMPLE))
    assert fresh["objects"] == [tab_interactive.empty_object()] and fresh["masks"] == [] and fresh["files"] is None


def test_exclude_clicks_alone_wait_for_an_include_click(ctx):
    state, status = tab_interactive.click(ctx, tab_interactive.load_state(ctx, str(EXAMPLE)), "exclude point", 5, 5)
    assert "only exclude clicks" in status and state["files"] is None


def test_video_prompts_on_a_later_frame_with_two_objects(ctx):
    state = tab_video.load_state(str(VIDEO)) | {"frame": 8}
    state, _ = tab_video.click(state, "include point", 30, 80)
    state, _ = tab_video.new_object(state)
    state, _ = tab_video.click(state, "box (click two corners)", 10, 60)
    state, status = tab_video.click(state, "box (click two corners)", 70, 120)
    assert "object 2 (active): box on frame 8" in status
    assert [(i, f) for i, f, _ in tab_video.prompts_of(state)] == [(1, 8), (2, 8)]
    path, files, _ = tab_video.propagate(ctx, state, lambda *a, **k: None)
    frames = json.loads(Path(files[1]).read_text())["frames"]
    assert [f["frame_index"] for f in frames] == list(range(state["frames"]))  # forward and backward from frame 8
    assert {s["label"] for s in frames[0]["segments"]} <= {"object 1", "object 2"}
    assert Path(path).stat().st_size > 0
    assert tab_video.reset(state)["objects"] == [{}]


def test_regions_json_gets_a_sentence_for_each_mistake():
    for text, message in [
        ("[1, 2, 3]", "must be a JSON object"),
        ('{"points": [1, 2]}', r"\[x, y\] pair"),
        ('[{"points": [[5, 5]], "labels": [5]}]', "1 \\(include\\) or 0"),
        ('[{"points": [[5, 5]], "labels": [0]}]', "only exclude points"),
        ('[{"box": [1, 2]}]', "four numbers"),
        ('[{"box": [1, 2, 3, NaN]}]', "finite number"),
        ("", "as JSON"),
        ("[", "must be JSON"),
        ('[{"circle": 3}]', "unknown keys"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_regions(text)
    assert len(parse_regions('{"points": [[1, 2]]}')) == 1


def test_displayed_text_loses_control_and_bidi_characters():
    assert clean_text("the \u202ecup\u202c\x07\x1b[31m  red\u200b") == "the cup[31m red"
    assert clean_text("x" * 100, limit=10) == "x" * 9 + "…"


def test_the_models_chat_is_not_taken_for_class_names():
    names = ["Sure", "the segmentation result is", "red circle", "sky", "sky"]
    assert plausible_class_names(names) == ["red circle", "sky"]


def test_the_phrase_naming_each_target_takes_its_colour():
    result = SegmentationResult("reasoning", "q", np.ones((1, 4, 4), bool), ["q"], np.array([0.8]), np.array([1]))
    pieces = highlighted_answer("The blue ring, because it is round.", "what could roll?", result)
    assert pieces[0] == ("The blue ring", "target 1") and pieces[1][1] is None
    two = SegmentationResult(
        "reasoning", "q", np.ones((2, 4, 4), bool), ["a", "b"], np.array([0.8, 0.7]), np.array([1, 2])
    )
    labelled = [p for p in highlighted_answer("The red star and the blue ring, as both shine.", "q", two) if p[1]]
    assert labelled == [("The red star", "target 1"), ("the blue ring", "target 2")]
    assert TARGET_COLOURS["target 1"] != TARGET_COLOURS["target 2"]


def test_a_user_error_is_one_log_line_and_one_sentence(caplog):
    import gradio as gr

    @user_errors
    def handler(x):
        raise ValueError("the box has zero area: drag a box at least 1 pixel wide and tall")

    with caplog.at_level(logging.WARNING, logger="hyperseg_lite.app"), pytest.raises(gr.Error) as raised:
        handler(1)
    assert raised.value.print_exception is False  # Gradio prints no traceback
    assert [r.getMessage() for r in caplog.records] == [
        "user error: the box has zero area: drag a box at least 1 pixel wide and tall"
    ]


def test_gpu_decorator_is_a_no_op_off_spaces():
    from demo.gpu import on_gpu, video_duration

    def handler(image: str, threshold: float = 0.5):
        return image, threshold

    wrapped = on_gpu(lambda *a: 10)(handler)
    assert wrapped("x") == ("x", 0.5) and wrapped.__name__ == "handler"
    assert video_duration(300) > video_duration(10)


# ---------------------------------------------------------------- public API
def test_endpoints_have_named_parameters_and_optional_ones_are_optional(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert set(endpoints) == {"/segment_classes", "/refer", "/reason", "/interactive", "/segment_video"}
    params = {
        name: {p["parameter_name"]: p["parameter_has_default"] for p in e["parameters"]}
        for name, e in endpoints.items()
    }
    assert params["/segment_classes"] == {"image": False, "classes": True, "mode": True, "threshold": True}
    assert params["/refer"] == {"image": False, "expression": False, "threshold": True}
    assert params["/reason"] == {"image": False, "question": False, "explain": True, "threshold": True}
    assert params["/interactive"] == {"image": False, "regions": False}
    assert params["/segment_video"] == {
        "video": False,
        "objects": True,
        "expression": True,
        "reasoning": True,
        "threshold": True,
    }


def check_annotated(output, size):
    assert image_size(output["image"]) == size
    assert output["annotations"] and all(image_size(a["image"]) == size for a in output["annotations"])


def test_every_tab_endpoint_answers(client, served):
    from gradio_client import handle_file

    size = image_size(EXAMPLE)
    picture = handle_file(str(EXAMPLE))
    annotated, summary, files = client.predict(
        image=picture, classes="circle, star, sky", mode="semantic", threshold=0.0, api_name="/segment_classes"
    )
    check_annotated(annotated, size)
    assert "Found" in summary and served[2] in summary and len(files) == 2  # the caveat under every result
    annotated, status, files = client.predict(image=picture, expression="the cup", threshold=0.0, api_name="/refer")
    check_annotated(annotated, size)
    annotated, status, answer, files = client.predict(
        image=picture, question="what is hot?", threshold=0.0, api_name="/reason"
    )
    check_annotated(annotated, size)
    assert [a["label"] for a in annotated["annotations"]] == ["target 1"]
    annotated, status, files = client.predict(
        image=picture,
        regions='[{"points": [[50, 60]], "labels": [1]}, {"box": [5, 5, 90, 80]}]',
        api_name="/interactive",
    )
    assert len(annotated["annotations"]) == 2 and status.startswith("2 region")
    video, answer, status, files = client.predict(
        video=handle_file(str(VIDEO)), objects='[{"frame": 5, "box": [12, 62, 68, 118]}]', api_name="/segment_video"
    )
    assert Path(video).suffix == ".mp4" and Path(video).stat().st_size > 0
    assert any(str(f).endswith(".zip") for f in files)
    video, answer, status, files = client.predict(
        video=handle_file(str(VIDEO)), expression="the blue ring", api_name="/segment_video"
    )
    assert Path(video).stat().st_size > 0


def test_notices_are_shown_and_kept_in_the_json(client, tmp_path):
    from gradio_client import handle_file

    rgba = tmp_path / "rgba.png"
    Image.fromarray(np.full((40, 50, 4), 128, dtype=np.uint8)).save(rgba)
    _, status, files = client.predict(image=handle_file(str(rgba)), expression="the cup", api_name="/refer")
    assert "transparency flattened" in status
    saved = json.loads(Path(next(f for f in files if str(f).endswith(".json"))).read_text())
    assert any("transparency flattened" in n for n in saved["notices"])


def bad_files(folder: Path) -> dict[str, Path]:
    """The unreadable uploads a visitor really sends."""
    data = EXAMPLE.read_bytes()
    files = {"zero.png": b"", "text.png": b"this is not an image", "truncated.png": data[: len(data) // 2]}
    for name, content in files.items():
        (folder / name).write_bytes(content)
    return {name: folder / name for name in files}


@pytest.mark.parametrize(
    "kwargs, api_name, message",
    [
        ({"expression": "   "}, "/refer", "empty"),
        ({"question": ""}, "/reason", "empty"),
        ({"classes": ",,", "mode": "panoptic"}, "/segment_classes", "named no class"),
        ({"classes": "circle", "mode": "everything"}, "/segment_classes", "must be one of"),
        ({"expression": "cup", "threshold": "high"}, "/refer", "must be a number"),
        ({"expression": "cup", "threshold": 7}, "/refer", "between 0 and 1"),
        ({"regions": '[{"points": [[5000, 5]], "labels": [1]}]'}, "/interactive", "outside"),
        ({"regions": '[{"box": [5, 5, 5, 40]}]'}, "/interactive", "zero area"),
        ({"regions": "not json"}, "/interactive", "JSON"),
        ({"regions": "[1, 2, 3]"}, "/interactive", "JSON object"),
        ({"regions": '{"points": [1, 2]}'}, "/interactive", "pair"),
        ({"regions": '[{"points": [[5, 5]], "labels": [5]}]'}, "/interactive", "1 \\(include\\) or 0"),
    ],
)
def test_bad_input_gives_the_intended_message(client, kwargs, api_name, message):
    from gradio_client import handle_file

    with pytest.raises(Exception, match=message):
        client.predict(image=handle_file(str(EXAMPLE)), **kwargs, api_name=api_name)


def test_unreadable_uploads_get_a_sentence(client, tmp_path):
    from gradio_client import handle_file

    for name, path in bad_files(tmp_path).items():
        with pytest.raises(Exception, match=f"cannot read {name}"):
            client.predict(image=handle_file(str(path)), expression="the cup", api_name="/refer")
        with pytest.raises(Exception, match=name):
            client.predict(video=handle_file(str(path)), objects='[{"box": [1, 1, 9, 9]}]', api_name="/segment_video")


def test_video_needs_objects_or_an_expression(client):
    from gradio_client import handle_file

    with pytest.raises(Exception, match="either objects"):
        client.predict(video=handle_file(str(VIDEO)), api_name="/segment_video")
    with pytest.raises(Exception, match="frame must be"):
        client.predict(
            video=handle_file(str(VIDEO)), objects='[{"frame": -1, "box": [1, 1, 9, 9]}]', api_name="/segment_video"
        )


def test_two_concurrent_clients_get_their_own_results(app_url, tmp_path):
    from gradio_client import Client, handle_file

    sizes = {"a": (70, 40), "b": (33, 90)}
    outputs = {}

    def ask(name):
        path = tmp_path / f"{name}.png"
        Image.fromarray((np.random.default_rng(len(name)).random((*sizes[name][::-1], 3)) * 255).astype(np.uint8)).save(
            path
        )
        annotated, _, _ = Client(app_url, verbose=False).predict(
            handle_file(str(path)), "the thing", 0.0, api_name="/refer"
        )
        outputs[name] = image_size(annotated["image"])

    threads = [threading.Thread(target=ask, args=(n,)) for n in sizes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert outputs == sizes


# ---------------------------------------------------------------- real browser
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_browser = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)"
)


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = Path(os.environ.get("HYPERSEG_SCREENSHOTS") or tmp_path_factory.mktemp("shots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser_page(app_url):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (python) is not installed")
    args = [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
    ]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(app_url, wait_until="domcontentloaded")
        page.wait_for_selector("#classes-image", timeout=60_000)
        yield page
        browser.close()


def upload(page, elem_id, path):
    page.locator(f"#{elem_id} input[type=file]").set_input_files(str(path))


def wait_text(page, elem_id, text, timeout=60_000):
    """Wait until element ``elem_id`` shows ``text``; its text then (and in the failure message if it never does)."""
    try:
        page.wait_for_function(
            f"(document.querySelector('#{elem_id}')?.innerText || '').includes({json.dumps(text)})", timeout=timeout
        )
    except Exception as error:  # noqa: BLE001 - re-raised with what the page showed instead
        raise AssertionError(
            f"#{elem_id} never showed {text!r}; it shows {page.locator(f'#{elem_id}').inner_text()!r}"
        ) from error
    return page.locator(f"#{elem_id}").inner_text()


def click_image(page, elem_id, x, y, size):
    """Click at image pixel (x, y) of a displayed image of ``size`` (width, height) pixels."""
    image = page.locator(f"#{elem_id} img")
    page.wait_for_function(f"document.querySelector('#{elem_id} img')?.complete", timeout=60_000)  # laid out
    before = image.get_attribute("src")
    box = image.bounding_box()
    image.click(position={"x": x * box["width"] / size[0], "y": y * box["height"] / size[1]})
    # every click redraws the canvas: wait for the new picture, so the next click lands on it
    try:
        page.wait_for_function(
            f"document.querySelector('#{elem_id} img')?.src !== {json.dumps(before)}", timeout=60_000
        )
    except Exception as error:  # noqa: BLE001
        page.screenshot(path="/tmp/click_failure.png", full_page=True)
        status = page.locator(f"#{elem_id.replace('canvas', 'status')}").inner_text()
        raise AssertionError(f"the click at ({x}, {y}) did not redraw #{elem_id}; status: {status!r}") from error


@needs_browser
def test_text_tabs_in_a_browser_with_the_answer_in_colour(browser_page, shots):
    page = browser_page

    def run_tab(tab, prefix, text, image):
        page.get_by_role("tab", name=tab).click()
        upload(page, f"{prefix}-image", ROOT / "assets" / "examples" / image)
        if text is not None:
            page.locator(f"#{prefix}-text textarea").fill(text)
        page.locator(f"#{prefix}-run").click()
        page.wait_for_selector(f"#{prefix}-output img", timeout=60_000)

    example = EXAMPLES["images"][0]
    run_tab("Open-vocabulary", "classes", example["classes"], example["classes_image"])
    page.screenshot(path=str(shots / "classes.png"), full_page=True)
    run_tab("Referring", "refer", example["expression"], example["image"])
    page.screenshot(path=str(shots / "refer.png"), full_page=True)
    page.get_by_role("tab", name="Reasoning").click()
    threshold = page.locator("#reason-threshold input[type=number]")
    threshold.fill("0")  # any mask answers, so the answer has a target to colour (the test model is random)
    threshold.press("Enter")
    run_tab("Reasoning", "reason", example["question"], example["question_image"])
    wait_text(page, "reason-status", "Mask")
    answer = page.locator("#reason-answer")
    answer.locator("text=target 1").first.wait_for(timeout=30_000)  # the legend: the phrase is labelled
    page.screenshot(path=str(shots / "reason.png"), full_page=True)


@needs_browser
def test_interactive_tab_in_a_browser_drawn_prompts_and_image_switch(browser_page, shots):
    page = browser_page
    size = image_size(EXAMPLE)
    page.get_by_role("tab", name="Interactive").click()
    upload(page, "interactive-image", EXAMPLE)
    wait_text(page, "interactive-status", "Click on an object")
    click_image(page, "interactive-canvas", 120, 60, size)  # include
    wait_text(page, "interactive-status", "1 object(s)")
    page.locator("#interactive-tool").get_by_text("exclude point").click()
    click_image(page, "interactive-canvas", 20, 20, size)
    page.locator("#interactive-new-object").click()
    wait_text(page, "interactive-status", "Object 2")
    page.locator("#interactive-tool").get_by_text("box").click()
    box = [int(v) for v in EXAMPLES["images"][0]["box"].split(",")]
    click_image(page, "interactive-canvas", box[0], box[1], size)
    wait_text(page, "interactive-status", "opposite corner")
    click_image(page, "interactive-canvas", box[2], box[3], size)
    wait_text(page, "interactive-status", "2 object(s)")
    brush = page.locator("#interactive-brush")
    brush.get_by_role("button", name="Brush", exact=True).click()
    canvas = brush.locator("canvas").first.bounding_box()
    cx, cy = canvas["x"] + canvas["width"] / 2, canvas["y"] + canvas["height"] / 2
    page.mouse.move(cx - 50, cy + 40)
    page.mouse.down()
    for k in range(15):
        page.mouse.move(cx - 50 + 6 * k, cy + 40 - 2 * k)
    page.mouse.up()
    page.wait_for_timeout(500)
    page.locator("#interactive-add-scribble").click()
    wait_text(page, "interactive-status", "3 object(s)")
    page.screenshot(path=str(shots / "interactive.png"), full_page=True)
    # another image: nothing of the first one's prompts or masks is carried over
    page.locator("[role=tabpanel]:visible .gallery-item").nth(1).click()  # the second example
    wait_text(page, "interactive-status", "Click on an object")
    page.locator("#interactive-tool").get_by_text("include point").click()
    click_image(page, "interactive-canvas", 100, 100, image_size(OTHER_EXAMPLE))
    assert wait_text(page, "interactive-status", "object(s)").startswith("1 object(s)")


@needs_browser
def test_video_tab_in_a_browser_two_objects_on_a_later_frame(browser_page, shots):
    page = browser_page
    page.get_by_role("tab", name="Video").click()
    upload(page, "video-input", VIDEO)
    wait_text(page, "video-status", "frames. Click")
    first_frame = page.locator("#video-canvas img").get_attribute("src")
    frame = page.locator("#video-frame input[type=number]")
    frame.fill("8")
    frame.press("Enter")
    page.wait_for_function(
        f"document.querySelector('#video-canvas img')?.src !== {json.dumps(first_frame)}", timeout=60_000
    )  # frame 8 shown
    height, width = read_frame(str(VIDEO), 0).shape[:2]
    size = (width, height)
    click_image(page, "video-canvas", size[0] * 0.45, size[1] * 0.6, size)
    wait_text(page, "video-status", "on frame 8")
    page.locator("#video-new-object").click()
    page.locator("#video-tool").get_by_text("box").click()
    box = [int(v) for v in EXAMPLES["video"]["box"].split(",")]
    click_image(page, "video-canvas", box[0], box[1], size)
    wait_text(page, "video-status", "opposite corner")
    click_image(page, "video-canvas", box[2], box[3], size)
    wait_text(page, "video-status", "object 2 (active): box on frame 8")
    page.locator("#video-run").click()
    wait_text(page, "video-status", "Propagated 2 prompt(s)", timeout=120_000)
    page.wait_for_selector("#video-output video", timeout=60_000)
    page.screenshot(path=str(shots / "video.png"), full_page=True)
