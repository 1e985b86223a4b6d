"""Every task through the pipeline on the tiny random model: types, shapes at the original size, merging rules."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hyperseg_lite import build_random_model
from hyperseg_lite.pipeline import HyperSegPipeline, HyperSegPredictor, Region, SegmentationResult
from hyperseg_lite.pipeline import postprocess as post


@pytest.fixture(scope="module")
def pipe():
    return HyperSegPipeline(build_random_model("tiny", seed=0))


def picture(height, width, seed=0):
    return (np.random.default_rng(seed).random((height, width, 3)) * 255).astype(np.uint8)


SIZES = [(47, 83), (90, 31), (64, 64)]


@pytest.mark.parametrize("size", SIZES)
def test_referring_and_reasoning_shapes(pipe, size):
    image = picture(*size)
    result = pipe.refer(image, "the small red star left of the ring", threshold=0.0)
    assert isinstance(result, SegmentationResult) and result.task == "referring"
    assert result.masks.shape == (1, *size) and result.masks.dtype == bool
    assert result.labels == ["the small red star left of the ring"] and 0 <= result.scores[0] <= 1
    reasoning = pipe.reason(image, "which object could roll?", explain=True, threshold=0.0)
    assert reasoning.masks.shape[1:] == size and isinstance(reasoning.answer, str)


def test_an_explained_answer_names_what_its_mask_shows():
    """With both attribute heads the explanation opens with the colour and category they read from the chosen mask,
    and the LLM explains from there; switched off, or on a model without the heads (the release), the LLM names
    its object freely; a refused question gets no opening."""
    from helpers import with_attribute_groups

    from hyperseg_lite.data.vocabulary import CATEGORIES, COLOUR_NAMES
    from hyperseg_lite.pipeline.openings import answer_opening

    image, question = picture(64, 64), "which object could roll?"
    named = HyperSegPipeline(with_attribute_groups("colour", "category"))
    candidates = named.predictor.predict(question=question, image=named.encode(image))
    best, _ = post.referring_choice(candidates.mask_logits, candidates.scores[:, :1])
    colour = COLOUR_NAMES[int(candidates.attributes["colour"][best].argmax())]
    category = CATEGORIES[int(candidates.attributes["category"][best].argmax())]
    assert answer_opening(candidates).text == f"The {colour} {category}"
    assert candidates.attributes["colour"].shape == (len(candidates), len(COLOUR_NAMES))
    assert named.reason(image, question, explain=True, threshold=0.0).answer.startswith(f"The {colour} {category}")
    free = named.predictor.explain(question, named.encode(image))
    named.name_answer_from_mask = False
    assert named.reason(image, question, explain=True, threshold=0.0).answer == free
    named.name_answer_from_mask = True
    assert named.reason(image, question, explain=True, threshold=1.0).answer == free  # no match: nothing to name
    plain = HyperSegPipeline(build_random_model("tiny", seed=0))
    candidates = plain.predictor.predict(question=question, image=plain.encode(image))
    assert candidates.attributes == {} and answer_opening(candidates) is None


def test_an_explanation_never_contradicts_its_opening():
    """After "The red star" the LLM may not say another colour, another category than the question's, or another
    corner count; where the ban leaves it wandering, the answer is the opening alone."""
    from hyperseg_lite.pipeline.openings import Opening

    star = Opening("red", "star")
    relation = star.contradicting_words("what shape is the same colour as the cross?")
    assert "blue" in relation and "red" not in relation  # the answer's own colour only
    assert "cross" not in relation and "star" in relation and "hearts" in relation  # "like the cross", no other
    assert {"12", "6", "sky"} <= set(relation) and "10" not in relation  # a star's 10 corners; no background
    assert "star" not in star.contradicting_words("the object with the most corners")  # names none: its own
    assert "crosses" in star.contradicting_words("which object has no corners?")
    assert {"round", "hollow", "smooth"} <= set(relation)  # a star neither rolls nor is hollow nor smooth
    assert not {"round", "hollow", "smooth"} & set(Opening("blue", "ring").contradicting_words("which is hollow?"))
    assert star.prompt == "The red star,"  # it goes on with the reason, adding no object the mask does not show
    good = "The red star, because it has 10 corners, more than any other shape here."
    assert star.complete(good) == good
    for wandering in (
        "The red star, because it is red like the like the cross.",
        "The red star, because it is red like the.",
        "The red star, because it\nSure, the segmentation result is",
        "The red star, ring, ring, ring.",
        "The red star, because it has. It has.",
    ):
        assert star.complete(wandering) == "The red star."


def test_an_explained_answer_keeps_out_the_words_that_would_contradict_it():
    """The pipeline hands the opening's contradicting words to the generator as banned token sequences (both ways a
    word can be spelled after a space), and the answer it returns holds none of them."""
    from helpers import with_attribute_groups

    from hyperseg_lite.pipeline.openings import answer_opening

    image, question = picture(64, 64), "what shape is the same colour as the cross?"
    named = HyperSegPipeline(with_attribute_groups("colour", "category"), max_new_tokens=8)
    opening = answer_opening(named.predictor.predict(question=question, image=named.encode(image)))
    banned = named.predictor.word_sequences(["blue"])
    assert {named.tokenizer.decode(ids) for ids in banned} == {" blue"} and len(banned) <= 2  # one way in bytes
    seen = {}
    generate = named.model.generate_text

    def recording(*args, **kwargs):
        seen.update(kwargs)
        return generate(*args, **kwargs)

    named.model.generate_text = recording
    answer = named.reason(image, question, explain=True, threshold=0.0).answer
    assert seen["bad_words_ids"] == named.predictor.word_sequences(opening.contradicting_words(question))
    assert answer.startswith(opening.text)
    assert not set(answer[len(opening.text) :].lower().split()) & set(opening.contradicting_words(question))


def test_no_target_expression_is_an_explicit_no_match(pipe):
    result = pipe.refer(picture(40, 50), "the purple elephant", threshold=1.0)
    assert result.no_match and result.masks.shape == (0, 40, 50) and result.union().shape == (40, 50)
    assert '"no_match": true' in result.to_json()


@pytest.mark.parametrize("mode", ["semantic", "instance", "panoptic"])
@pytest.mark.parametrize("size", SIZES[:2])
def test_class_prompts_shapes(pipe, mode, size):
    names = ["circle", "sky", "blue star"]
    result = pipe.segment_classes(picture(*size), names, mode=mode, stuff=["sky"], threshold=0.0)
    assert result.task == mode and result.masks.shape[1:] == size
    assert set(result.labels) <= set(names)
    assert set(result.absent) == set(names) - set(result.labels)
    if mode == "semantic":  # one segment per class, disjoint
        assert len(set(result.labels)) == len(result.labels)
        assert result.masks.sum(0).max() <= 1


def test_absent_classes_come_back_empty(pipe):
    result = pipe.segment_classes(picture(40, 40), ["circle", "square"], threshold=1.0)
    assert result.no_match and result.absent == ["circle", "square"]


def test_expressions_and_questions_default_to_the_checkpoints_own_no_match_threshold():
    """Without ``threshold``, refer / reason / refer_video refuse below ``config.referring_threshold``."""
    pipe = HyperSegPipeline(build_random_model("tiny", seed=0))
    image = picture(47, 83)
    config = pipe.model.config
    assert config.referring_threshold == 0.5  # nothing measured: the old fixed default
    config.referring_threshold = 1.0  # no score reaches 1: everything is refused
    assert pipe.referring_threshold() == 1.0 and pipe.referring_threshold(0.2) == 0.2
    assert pipe.refer(image, "the blue star").no_match
    assert pipe.reason(image, "which shape has no corners?").no_match
    assert all(r.no_match for r in pipe.refer_video([image, image], "the blue star"))
    config.referring_threshold = 0.0  # any mask is kept
    assert not pipe.refer(image, "the blue star").no_match
    assert pipe.refer(image, "the blue star", threshold=1.0).no_match  # a given threshold wins
    config.referring_threshold = 1.5
    with pytest.raises(ValueError, match="between 0 and 1"):
        pipe.refer(image, "the blue star")


@pytest.mark.parametrize("mode", ["semantic", "instance", "panoptic"])
def test_class_prompts_default_to_the_checkpoints_own_threshold(mode):
    """Without ``threshold`` a class prompt uses the config's value for its mode (semantic and segments apart)."""
    pipe = HyperSegPipeline(build_random_model("tiny", seed=0))
    image, names = picture(47, 83), ["circle", "sky", "blue star"]
    field = "semantic_threshold" if mode == "semantic" else "segment_threshold"
    other = "segment_threshold" if mode == "semantic" else "semantic_threshold"
    config = pipe.model.config
    assert getattr(config, field) == 0.5  # nothing measured: the old fixed default
    setattr(config, other, 1.0)  # the other mode's value must not leak into this one
    for value in (0.0, 1.0):
        setattr(config, field, value)
        assert pipe.class_threshold(mode) == value
        default = pipe.segment_classes(image, names, mode=mode, stuff=["sky"])
        given = pipe.segment_classes(image, names, mode=mode, stuff=["sky"], threshold=value)
        assert default.labels == given.labels and np.array_equal(default.masks, given.masks)
        if value == 0.0 and mode == "semantic":
            assert default.union().all()  # every pixel labelled
        if value == 1.0 and mode != "semantic":
            assert not len(default)  # sigmoid scores never reach 1 (summed semantic evidence can)
    with pytest.raises(ValueError, match="between 0 and 1"):
        pipe.segment_classes(image, names, mode=mode, threshold=1.5)


def test_absent_class_scores_give_no_segment():
    """Post-processing: a class whose scores are low on every query never appears, in every mode."""
    gen = torch.Generator().manual_seed(0)
    logits = torch.full((6, 16, 16), -6.0)
    for q in range(6):  # six separate blobs
        logits[q, (q // 3) * 8 : (q // 3) * 8 + 6, (q % 3) * 5 : (q % 3) * 5 + 4] = 6.0
    probs = torch.rand(6, 3, generator=gen) * 0.3 + 0.6
    probs[:, 1] = 0.05  # class 1 absent
    for segments in (
        post.instance_inference(logits, probs, 0.3),
        post.panoptic_inference(logits, probs, [False, False, True], 0.3),
    ):
        assert segments and all(s.label != 1 for s in segments)
    label_map = post.semantic_inference(logits, probs, 0.3)
    assert not (label_map == 1).any()


def test_long_class_lists_are_chunked_and_merged(pipe):
    """Chunking is exact bookkeeping: with chunk_size >= len the single pass is used; with smaller chunks the
    merged candidates equal each chunk run on its own (an LLM's hidden states depend on the other names in
    the prompt, so chunked and unchunked scores are not expected to be equal)."""
    names = [f"class {i}" for i in range(5)]
    predictor = HyperSegPredictor(pipe)
    image = predictor.encode(picture(40, 60))
    with torch.inference_mode():
        merged = predictor.predict(class_names=names, mode="panoptic", image=image, chunk_size=2)
        logits, probs = merged.mask_logits, merged.scores
        queries = pipe.model.num_queries
        assert logits.shape[0] == probs.shape[0] == 3 * queries and probs.shape[1] == 5
        for chunk_index, start in enumerate(range(0, 5, 2)):
            chunk = names[start : start + 2]
            alone = predictor.predict(class_names=chunk, mode="panoptic", image=image, chunk_size=2)
            rows = slice(chunk_index * queries, (chunk_index + 1) * queries)
            assert torch.allclose(logits[rows], alone.mask_logits, atol=1e-4)
            assert torch.allclose(probs[rows, start : start + len(chunk)], alone.scores, atol=1e-5)
            assert probs[rows].sum() == pytest.approx(probs[rows, start : start + len(chunk)].sum().item(), rel=1e-5)
        single = pipe.segment_classes(image.pixels, names, chunk_size=10, threshold=0.0)
        chunked_as_one = pipe.segment_classes(image.pixels, names, chunk_size=5, threshold=0.0)
    assert single.labels == chunked_as_one.labels and np.array_equal(single.masks, chunked_as_one.masks)


def test_five_hundred_names_work(pipe):
    names = [f"thing {i}" for i in range(500)]
    result = pipe.segment_classes(picture(32, 32), names, mode="instance", threshold=0.0, chunk_size=100)
    assert result.masks.shape[1:] == (32, 32) and set(result.labels) <= set(names)


def test_describe_then_segment_without_a_list(pipe):
    result = pipe.segment_classes(picture(30, 30), None, threshold=0.0)
    assert isinstance(result.answer, str) and result.masks.shape[1:] == (30, 30)


def test_describe_keeps_the_names_whose_segments_are_found(pipe, monkeypatch):
    """The LLM proposes names; by default only those that segmenting the image confirms come back."""
    written = "circle, sky, purple dragon, circle"
    monkeypatch.setattr(pipe.predictor, "describe", lambda image=None: written)
    monkeypatch.setattr(pipe.predictor, "describe_sampled", lambda samples, image=None: [written] * samples)
    image = picture(30, 30)
    assert pipe.describe(image, confirm=False) == ["circle", "sky", "purple dragon"]
    found = set(pipe.segment_classes(image, ["circle", "sky", "purple dragon"], mode="semantic").labels)
    assert pipe.describe(image) == [name for name in ["circle", "sky", "purple dragon"] if name in found]
    loose = set(pipe.segment_classes(image, ["circle", "sky", "purple dragon"], mode="semantic", threshold=0.0).labels)
    assert pipe.describe(image, threshold=0.0) == [n for n in ["circle", "sky", "purple dragon"] if n in loose]


def test_describe_proposes_the_names_of_the_greedy_and_the_sampled_lists_united_in_order(pipe, monkeypatch):
    """A name the greedy list leaves out but a sampled list has is proposed too (then confirmed or not)."""
    asked = []

    def sampled(samples, image=None):
        asked.append(samples)
        return ["circle, star.", "ring", "sky", "cross"][:samples]

    monkeypatch.setattr(pipe.predictor, "describe", lambda image=None: "circle, sky.")
    monkeypatch.setattr(pipe.predictor, "describe_sampled", sampled)
    image = pipe.encode(picture(30, 30))
    assert pipe.describe(image, confirm=False) == ["circle", "sky"] and asked == []  # the greedy list as written
    assert pipe.describe(image, confirm=False, samples=2) == ["circle", "sky", "star", "ring"] and asked == [2]
    proposed = ["circle", "sky", "star", "ring", "cross"]
    assert pipe.describe(image, threshold=0.0) == pipe.confirm_class_names(image, proposed, threshold=0.0)
    assert asked[-1] == pipe.naming_samples == 4
    loose = set(pipe.segment_classes(image, proposed, mode="semantic", threshold=0.0).labels)
    assert pipe.describe(image, threshold=0.0, samples=0) == [n for n in ["circle", "sky"] if n in loose]


def test_segmenting_without_a_list_segments_the_confirmed_names_or_else_the_proposed(pipe, monkeypatch):
    monkeypatch.setattr(pipe.predictor, "describe", lambda image=None: "circle, sky.")
    monkeypatch.setattr(pipe.predictor, "describe_sampled", lambda samples, image=None: ["star"] * samples)
    image = pipe.encode(picture(30, 30))
    confirmed = pipe.describe(image)
    result = pipe.segment_classes(image, None, mode="semantic", threshold=0.0)
    assert result.answer == "circle, sky."  # the LLM's greedy list as written
    assert set(result.labels) | set(result.absent) == set(confirmed or ["circle", "sky", "star"])
    monkeypatch.setattr(pipe, "confirm_class_names", lambda image, names, threshold=None: [])
    nothing_confirmed = pipe.segment_classes(image, None, mode="semantic", threshold=0.0)
    assert set(nothing_confirmed.labels) | set(nothing_confirmed.absent) == {"circle", "sky", "star"}


def test_sampled_lists_are_the_same_for_the_same_image_and_leave_the_callers_random_state(pipe):
    image = pipe.encode(picture(30, 30))
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    lists = pipe.predictor.describe_sampled(3, image)
    assert torch.equal(torch.rand(3), expected_next)  # the draw did not move the caller's generator
    assert len(lists) == 3 and all(isinstance(text, str) for text in lists)
    assert pipe.predictor.describe_sampled(3, image) == lists
    assert pipe.describe(image) == pipe.describe(image)
    for bad in (-1, 2.5, True, "4"):
        with pytest.raises(ValueError, match="samples must be a whole number"):
            pipe.describe(image, samples=bad)
    with pytest.raises(ValueError, match="naming_samples must be a whole number"):
        HyperSegPipeline(pipe.loaded, naming_samples=-1)


def test_a_name_the_llm_writes_that_no_class_prompt_accepts_is_dropped_not_raised(pipe, monkeypatch):
    written = "circle, " + "x" * 5000
    monkeypatch.setattr(pipe.predictor, "describe", lambda image=None: written)
    monkeypatch.setattr(pipe.predictor, "describe_sampled", lambda samples, image=None: [written] * samples)
    assert pipe.describe(picture(30, 30), confirm=False) == ["circle"]
    assert set(pipe.segment_classes(picture(30, 30), None, threshold=0.0).labels) <= {"circle"}


def test_interactive_points_boxes_scribbles_masks(pipe):
    image = picture(50, 70)
    mask = np.zeros((50, 70), dtype=bool)
    mask[10:20, 30:50] = True
    regions = [
        Region(points=[[10, 10], [40, 30]], point_labels=[1, 0]),
        Region(box=[5, 5, 30, 40]),
        Region(scribble=[[50, 10], [60, 20], [65, 40]]),
        Region(mask=mask),
    ]
    result = pipe.interactive(image, regions)
    assert result.masks.shape == (4, 50, 70) and result.labels == [f"region {i}" for i in range(1, 5)]


def test_negative_clicks_exclude_candidates():
    logits = torch.full((3, 10, 10), -5.0)
    logits[0, :, :] = 5.0  # covers everything, including the negative click
    logits[1, :5, :5] = 5.0
    probs = torch.tensor([[0.9], [0.6], [0.1]])
    best, _ = post.region_choice(logits, probs, 0, negatives=np.array([[8.0, 8.0]]), positives=np.array([[2.0, 2.0]]))
    assert best == 1


def test_the_previous_mask_outranks_a_higher_score_elsewhere_only_when_weighted():
    logits = torch.full((2, 10, 10), -5.0)
    logits[0, :4, :4] = 5.0  # scores higher, somewhere else
    logits[1, 5:, 5:] = 5.0  # continues the previous mask
    previous = torch.zeros(10, 10, dtype=torch.bool)
    previous[6:, 5:] = True
    probs = torch.tensor([[0.9], [0.5]])
    none = np.zeros((0, 2))
    assert post.region_choice(logits, probs, 0, none, none)[0] == 0  # the release's rule
    assert post.region_choice(logits, probs, 0, none, none, previous, previous_weight=0.0)[0] == 0
    best, score = post.region_choice(logits, probs, 0, none, none, previous, previous_weight=2.0)
    assert best == 1 and score == pytest.approx(0.5 * torch.tensor(5.0).sigmoid().item())  # the score stays its own
    assert post.referring_choice(logits, probs)[0] == 0
    best, score = post.referring_choice(logits, probs, previous, previous_weight=2.0)
    assert best == 1 and score < 0.5  # a threshold still reads the score, not the ranking


def test_a_tracked_referring_object_is_held_through_a_frame_whose_score_dips():
    """Referring video: once found, a frame whose best mask continues the last answer answers below the no-match
    threshold (``hold_iou``); without a last answer, or with the hold off, the threshold decides alone."""
    from types import SimpleNamespace

    from hyperseg_lite.pipeline.answers import referring_answer

    logits = torch.full((1, 10, 10), -5.0)
    logits[0, 5:, 5:] = 5.0
    image = SimpleNamespace(size=(10, 10), notices=[], to_original=lambda m: (m > 0).numpy())
    dipped = SimpleNamespace(
        image=image, prompts=["the red star"], mask_logits=logits, scores=torch.tensor([[0.3]]), several=None
    )
    previous = torch.zeros(10, 10, dtype=torch.bool)
    previous[6:, 5:] = True  # IoU 0.8 with the candidate
    elsewhere = torch.zeros(10, 10, dtype=torch.bool)
    elsewhere[:3, :3] = True

    def answer(prev, hold_iou):
        return referring_answer(dipped, "referring_video", 0.5, previous=prev, hold_iou=hold_iou)[0]

    assert not answer(previous, 0.5).no_match and answer(previous, 0.5).masks[0, 5, 5]
    assert answer(previous, 0.9).no_match  # continues it, but less than the hold asks
    assert answer(elsewhere, 0.5).no_match and answer(None, 0.5).no_match  # another object / nothing found yet
    assert answer(previous, None).no_match  # every frame alone: the threshold decides


def test_an_expression_naming_several_objects_is_answered_with_every_confident_token():
    """An expression such as "all red objects": each object comes from its own mask token; with ``union_threshold``
    every token scoring at least that joins the best one's mask, a weaker token does not, and the score stays the
    best token's. 0 is the release: the best token alone."""
    from types import SimpleNamespace

    from hyperseg_lite.pipeline.answers import referring_answer

    logits = torch.full((3, 10, 10), -5.0)
    logits[0, :4, :4] = 5.0  # the best token: one red object
    logits[1, 6:, 6:] = 5.0  # the other red object
    logits[2, :4, 6:] = 5.0  # a blue one
    image = SimpleNamespace(size=(10, 10), notices=[], to_original=lambda m: (m > 0).numpy())
    candidates = SimpleNamespace(
        image=image,
        prompts=["all red objects"],
        mask_logits=logits,
        scores=torch.tensor([[0.95], [0.8], [0.2]]),
        several=None,  # a model without the plurality head
    )
    release = referring_answer(candidates, "referring", 0.3)[0]
    assert release.masks[0].sum() == 16
    union = referring_answer(candidates, "referring", 0.3, union_threshold=0.6)[0]
    assert union.masks.shape[0] == 1 and union.masks[0].sum() == 32
    assert union.masks[0, 8, 8] and not union.masks[0, 2, 8]
    assert union.scores[0] == pytest.approx(release.scores[0])
    assert referring_answer(candidates, "referring", 0.99, union_threshold=0.6)[0].no_match  # the best decides
    # with the plurality head (modeling/plurality_scores.py) only an expression it reads as naming several is
    candidates.several = 0.9
    assert referring_answer(candidates, "referring", 0.3, union_threshold=0.6)[0].masks[0].sum() == 32
    candidates.several = 0.1  # "the red object at the top" where two red objects are: the best token alone
    assert referring_answer(candidates, "referring", 0.3, union_threshold=0.6)[0].masks[0].sum() == 16


def test_the_hold_must_be_an_iou_or_none(tiny):
    with pytest.raises(ValueError, match="track_hold_iou"):
        HyperSegPipeline(tiny, track_hold_iou=0.0)
    assert HyperSegPipeline(tiny, track_hold_iou=None).track_hold_iou is None


def test_tracking_weight_must_not_be_negative(tiny):
    with pytest.raises(ValueError, match="tracking_overlap_weight"):
        HyperSegPipeline(tiny, tracking_overlap_weight=-1.0)


def test_result_exporters_and_overlay(pipe, tmp_path):
    image = picture(45, 61)
    result = pipe.segment_classes(image, ["circle", "sky"], mode="instance", threshold=0.0)
    overlay = result.overlay(image)
    assert overlay.dtype == np.uint8 and overlay.shape[1] == 61 and overlay.shape[0] >= 45
    assert result.to_json(tmp_path / "r.json") and (tmp_path / "r.json").exists()
