"""VideoSession: prompts on any frame for several objects, propagation forward and backward, explicit state,
and each clip decoded once."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from hyperseg_lite import build_random_model
from hyperseg_lite.pipeline import HyperSegPipeline, Region, VideoFrames, VideoSession


@pytest.fixture(scope="module")
def pipe():
    return HyperSegPipeline(build_random_model("tiny", seed=0))


def clip(frames=6, size=(36, 52)):
    rng = np.random.default_rng(0)
    base = (rng.random((*size, 3)) * 255).astype(np.uint8)
    return [np.roll(base, 2 * i, axis=1) for i in range(frames)]


def same(a, b):
    return np.array_equal(a.masks, b.masks) and np.array_equal(a.scores, b.scores) and list(a.ids) == list(b.ids)


def test_first_frame_prompts_give_what_track_gives(pipe):
    frames = clip()
    regions = [Region(box=[2, 2, 20, 30]), Region(points=[[40, 10]])]
    session = pipe.video_session(frames)
    assert isinstance(session, VideoSession)
    for k, region in enumerate(regions):
        session.add_prompt(0, k + 1, region)
    propagated = list(session.propagate())
    tracked = pipe.track(frames, regions)
    assert [i for i, _ in propagated] == list(range(len(frames)))
    assert all(same(r, t) for (_, r), t in zip(propagated, tracked))
    assert all(r.task == "video_object" and r.labels == ["region 1", "region 2"] for _, r in propagated)


def test_an_object_prompted_on_a_later_frame_enters_there(pipe):
    frames = clip()
    session = pipe.video_session(frames)
    session.add_prompt(0, 1, Region(box=[2, 2, 20, 30]))
    session.add_prompt(3, 7, Region(points=[[30, 20]]))
    results = dict(session.propagate())
    assert sorted(results) == list(range(6))
    for index, result in results.items():
        assert list(result.ids) == [1, 7] and result.masks.shape == (2, 36, 52)
        if index < 3:  # before its prompt, object 7 has no mask and score 0
            assert not result.masks[1].any() and result.scores[1] == 0
        else:
            assert result.scores[1] > 0
    # object 1 alone until frame 3: the same as a session that never hears of object 7
    alone = pipe.video_session(frames)
    alone.add_prompt(0, 1, Region(box=[2, 2, 20, 30]))
    for index, result in alone.propagate():
        if index < 3:
            assert np.array_equal(result.masks[0], results[index].masks[0])


def test_propagation_runs_backwards_from_a_later_prompt(pipe):
    frames = clip(5)
    session = pipe.video_session(frames)
    session.add_prompt(4, 2, Region(box=[20, 5, 45, 30]))
    backward = list(session.propagate(reverse=True))
    assert [i for i, _ in backward] == [4, 3, 2, 1, 0]
    assert all(r.frame_index == i and r.masks.shape == (1, 36, 52) for i, r in backward)
    # backwards over a clip is forwards over the reversed clip
    mirrored = pipe.video_session(frames[::-1])
    mirrored.add_prompt(0, 2, Region(box=[20, 5, 45, 30]))
    assert all(same(b, m) for (_, b), (_, m) in zip(backward, mirrored.propagate()))
    forward = list(session.propagate(start_frame=2))  # from frame 2 on: nothing prompted until frame 4
    assert [i for i, _ in forward] == [2, 3, 4] and not forward[0][1].masks.any()


def test_state_is_explicit_and_reset_forgets_prompts(pipe):
    frames = clip(3)
    session = pipe.video_session(frames)
    session.add_prompt(0, 1, Region(points=[[10, 10]]))
    first = list(session.propagate())
    again = list(session.propagate())  # a second pass starts from scratch: same answers
    assert all(same(a, b) for (_, a), (_, b) in zip(first, again))
    assert session.object_ids == [1]
    session.reset()
    assert session.object_ids == []
    with pytest.raises(ValueError, match="add a prompt"):
        session.propagate()


def test_bad_prompts_are_refused_with_a_sentence(pipe):
    session = pipe.video_session(clip(3))
    with pytest.raises(ValueError, match="past the end"):
        session.add_prompt(3, 1, Region(points=[[5, 5]]))
    with pytest.raises(ValueError, match="object_id"):
        session.add_prompt(0, 0, Region(points=[[5, 5]]))
    with pytest.raises(ValueError, match="frame_index"):
        session.add_prompt(-1, 1, Region(points=[[5, 5]]))
    with pytest.raises(ValueError, match="outside"):
        session.add_prompt(0, 1, Region(points=[[500, 5]]))
    with pytest.raises(ValueError, match="Region"):
        session.add_prompt(0, 1, [[5, 5]])
    generator = pipe.video_session(iter(clip(3)))
    generator.add_prompt(0, 1, Region(points=[[5, 5]]))
    with pytest.raises(ValueError, match="backwards"):
        generator.propagate(reverse=True)
    assert len(list(generator.propagate())) == 3
    with pytest.raises(ValueError, match="read once"):  # not a silent one-frame clip
        list(generator.propagate())


def test_whole_clip_methods_read_each_frame_once(pipe):
    """``track`` used to decode a clip twice (to validate it, then to run); a generator of frames shows that
    every frame is now drawn once, and that whole-clip methods accept one."""
    drawn = []

    def frames():
        for index, frame in enumerate(clip(4)):
            drawn.append(index)
            yield frame

    results = pipe.track(frames(), Region(box=[2, 2, 20, 30]))
    assert len(results) == 4 and drawn == [0, 1, 2, 3]
    drawn.clear()
    assert len(pipe.video_instances(frames(), ["circle"], threshold=0.0)) == 4 and drawn == [0, 1, 2, 3]
    drawn.clear()
    assert len(pipe.refer_video(frames(), "the square", threshold=0.0)) == 4 and drawn == [0, 1, 2, 3]


def test_whole_clip_methods_still_refuse_bad_clips(pipe):
    with pytest.raises(ValueError, match="longer than"):
        pipe.video_session(clip(5), max_frames=4)
    with pytest.raises(ValueError, match="same size"):
        pipe.track([clip(1)[0], clip(1, size=(20, 20))[0]], Region(points=[[5, 5]]))
    with pytest.raises(ValueError, match="no frames"):
        pipe.refer_video([], "the square")


def test_a_video_file_is_read_forwards_and_backwards(pipe, tmp_path):
    path = tmp_path / "clip.avi"
    frames = clip(4, size=(32, 48))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, (48, 32))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    source = VideoFrames(path)
    forward = [i for i, _ in source.frames()]
    backward = [(i, f) for i, f in source.frames(3, reverse=True)]
    assert forward == [0, 1, 2, 3] and [i for i, _ in backward] == [3, 2, 1, 0]
    assert np.array_equal(backward[-1][1], source[0]) and np.array_equal(backward[0][1], source[3])
    session = pipe.video_session(path)
    session.add_prompt(3, 1, Region(box=[5, 5, 30, 25]))
    assert [i for i, _ in session.propagate(reverse=True)] == [3, 2, 1, 0]
    session.close()
