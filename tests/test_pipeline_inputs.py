"""Bad input gets a clear ValueError before the model runs; odd but valid inputs are accepted."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from hyperseg_lite import build_random_model
from hyperseg_lite.pipeline import HyperSegPipeline, HyperSegPredictor, Region, load_image, load_video
from hyperseg_lite.pipeline.inputs import iter_video


@pytest.fixture(scope="module")
def pipe():
    return HyperSegPipeline(build_random_model("tiny", seed=0))


IMAGE = (np.random.default_rng(0).random((40, 60, 3)) * 255).astype(np.uint8)


def test_image_formats(tmp_path):
    grey = load_image(IMAGE[..., 0]).pixels
    assert grey.shape == (40, 60, 3) and grey.dtype == np.uint8
    rgba = np.concatenate([IMAGE, np.zeros((40, 60, 1), np.uint8)], axis=-1)
    assert (load_image(rgba).pixels == 255).all()  # fully transparent -> white
    sixteen = load_image(IMAGE.astype(np.uint16) * 257)
    assert np.array_equal(sixteen.pixels, IMAGE) and "16-bit" in sixteen.notices[0]
    Image.fromarray(IMAGE).save(tmp_path / "a.png")
    assert np.array_equal(load_image(tmp_path / "a.png").pixels, IMAGE)
    assert load_image(Image.fromarray(IMAGE)).pixels.shape == (40, 60, 3)


def test_exif_orientation_is_honoured(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    Image.fromarray(IMAGE).save(tmp_path / "rotated.jpg", exif=exif)
    assert load_image(tmp_path / "rotated.jpg").pixels.shape == (60, 40, 3)


def test_huge_images_are_downscaled_with_a_notice():
    loaded = load_image(np.zeros((300, 400, 3), np.uint8), max_pixels=30_000)
    assert loaded.pixels.shape[0] * loaded.pixels.shape[1] <= 30_000 and "downscaled" in loaded.notices[0]


@pytest.mark.parametrize(
    "bad, message",
    [
        ("/no/such/file.png", "no image file"),
        (np.zeros((0, 5, 3), np.uint8), "empty"),
        (np.zeros((4, 4, 7), np.uint8), "must be"),
        (np.full((4, 4, 3), np.nan), "NaN"),
        (12, "unsupported image type"),
    ],
)
def test_bad_images(bad, message):
    with pytest.raises(ValueError, match=message):
        load_image(bad)


def test_corrupt_file(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG not really")
    with pytest.raises(ValueError, match="cannot read"):
        load_image(path)


@pytest.mark.parametrize("text, message", [("", "empty"), ("   \t\n", "empty"), ("x" * 5000, "too long")])
def test_bad_text(pipe, text, message):
    with pytest.raises(ValueError, match=message):
        pipe.refer(IMAGE, text)
    with pytest.raises(ValueError, match=message):
        pipe.reason(IMAGE, text)


@pytest.mark.parametrize("names", [[], " , ,", ["  "]])  # "" / None mean "let the model name what it sees"
def test_empty_class_list(pipe, names):
    with pytest.raises(ValueError, match="class list is empty"):
        pipe.segment_classes(IMAGE, names)


def test_too_many_classes_and_bad_mode(pipe):
    with pytest.raises(ValueError, match="too many"):
        pipe.segment_classes(IMAGE, [f"c{i}" for i in range(1001)])
    with pytest.raises(ValueError, match="mode"):
        pipe.segment_classes(IMAGE, ["a"], mode="everything")


@pytest.mark.parametrize(
    "region, message",
    [
        (Region(points=[[100, 5]]), "outside"),
        (Region(points=[[-1, 5]]), "outside"),
        (Region(points=[[5, 5]], point_labels=[0]), "only negative"),
        (Region(points=[]), "at least one point"),
        (Region(box=[10, 10, 10, 30]), "zero area"),
        (Region(box=[10, 10, 90, 30]), "leaves"),
        (Region(box=[1, 2, 3]), "four numbers"),
        (Region(scribble=[[5, 5], [70, 5]]), "outside"),
        (Region(mask=np.zeros((40, 60), bool)), "empty"),
        (Region(mask=np.ones((10, 10), bool)), "must be 40x60"),
        (Region(), "exactly one"),
        (Region(points=[[5, 5]], box=[1, 1, 9, 9]), "exactly one"),
    ],
)
def test_bad_visual_prompts(pipe, region, message):
    with pytest.raises(ValueError, match=message):
        pipe.interactive(IMAGE, [region])


def test_no_regions(pipe):
    with pytest.raises(ValueError, match="at least one region"):
        pipe.interactive(IMAGE, [])


def test_bad_videos(tmp_path):
    with pytest.raises(ValueError, match="no frames"):
        load_video([])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no image frames"):
        load_video(tmp_path / "empty")
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    with pytest.raises(ValueError, match="cannot open|no readable frames"):
        load_video(tmp_path / "junk.mp4")
    with pytest.raises(ValueError, match="longer than"):
        load_video([IMAGE] * 5, max_frames=4)
    with pytest.raises(ValueError, match="same size"):
        load_video([IMAGE, IMAGE[:20]])


def test_video_sources(tmp_path):
    import cv2

    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.roll(IMAGE, i, axis=1)).save(folder / f"{i:03d}.png")
    assert len(load_video(folder)) == 3
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, (60, 40))
    for _ in range(4):
        writer.write(cv2.cvtColor(IMAGE, cv2.COLOR_RGB2BGR))
    writer.release()
    frames = load_video(path)
    assert len(frames) == 4 and frames[0].shape == (40, 60, 3)
    gif = tmp_path / "clip.gif"
    Image.fromarray(IMAGE).save(gif, save_all=True, append_images=[Image.fromarray(IMAGE[::-1])], duration=100)
    assert len(list(iter_video(gif))) == 2


def test_a_click_or_thin_scribble_on_a_large_image_is_not_lost_in_resizing(pipe):
    """A click's disc scales with the image (radius 10 px per 1,024), but resizing the image to the model's
    input can still leave it thinner than one input pixel; it must reach the model, not fail as an empty region."""
    image = (np.random.default_rng(1).random((256, 256, 3)) * 255).astype(np.uint8)  # the tiny model reads 64 px
    predictor = HyperSegPredictor(pipe)
    loaded = predictor.load(image)
    for region in (
        Region(points=[[101, 121]]),
        Region(scribble=[[10, 201], [240, 201]]),
        Region(box=[100, 100, 101, 101]),
    ):
        mask = predictor.region_masks([region], loaded)[0]
        assert mask.any() and mask.sum() <= 4 * 64, region
        assert len(pipe.interactive(image, region)) == 1
    wide = predictor.region_masks([Region(box=[40, 40, 160, 200])], loaded)[0]  # a region that survives resizing:
    assert wide.sum() == 30 * 40  # read at the new pixels' centres, as before
