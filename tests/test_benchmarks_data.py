"""Each benchmark reader on a small folder in the real format, written here: it reads back what was drawn."""

from __future__ import annotations

import numpy as np
import pytest
from benchmark_fixtures import (
    H,
    W,
    write_ade,
    write_coco_panoptic,
    write_davis,
    write_pascal_context,
    write_pascal_voc,
    write_reasonseg,
    write_reasonvos,
    write_ref_youtube_vos,
    write_refcoco,
    write_revos,
    write_youtube_vos,
)

from hyperseg_lite.benchmarks_data import (
    BenchmarkDataError,
    COCOPanopticReader,
    ReasonSegReader,
    RefCOCOReader,
    RefVOSReader,
    SemanticReader,
    VOSReader,
)


def test_refcoco_reads_one_sample_per_sentence_with_polygon_and_rle_masks(tmp_path):
    written = write_refcoco(tmp_path)
    reader = RefCOCOReader(written["folder"], "refcoco", "val")
    assert len(reader) == 3
    for k in range(3):
        sample = reader[k]
        assert sample.text == written["val_texts"][k]
        assert sample.image.exists() and sample.image.parent.name == "train2014"
        np.testing.assert_array_equal(sample.mask, written["val_masks"][k])
    assert len(RefCOCOReader(written["folder"], "refcoco", "testA")) == 1


def test_refcoco_reads_mdetrs_export_like_the_refs_json(tmp_path):
    written = write_refcoco(tmp_path)
    refs = written["folder"] / "refs(unc).json"
    refs.rename(refs.with_name("unused.json"))  # only final_refcoco_val.json is left for the val split
    reader = RefCOCOReader(written["folder"], "refcoco", "val")
    assert [reader[k].text for k in range(3)] == written["val_texts"]
    for k in range(3):
        np.testing.assert_array_equal(reader[k].mask, written["val_masks"][k])


def test_grefcoco_unions_several_targets_and_keeps_no_target_expressions(tmp_path):
    written = write_refcoco(tmp_path)
    reader = RefCOCOReader(written["folder"], "grefcoco", "val")
    assert [reader[k].no_target for k in range(3)] == [False, True, False]
    for k in range(3):
        np.testing.assert_array_equal(reader[k].mask, written["grefs_masks"][k])


def test_refcoco_never_opens_a_pickle_and_says_how_to_export_it(tmp_path):
    written = write_refcoco(tmp_path)
    refs = written["folder"] / "refs(unc).json"
    refs.rename(refs.with_suffix(".p"))
    (written["folder"] / "final_refcoco_val.json").unlink()
    with pytest.raises(BenchmarkDataError, match="pickle, which is never opened"):
        RefCOCOReader(written["folder"], "refcoco", "val")
    with pytest.raises(BenchmarkDataError, match="splits"):
        RefCOCOReader(written["folder"], "refcocog", "testA")


def test_reasonseg_draws_polygons_as_lisa_with_ignore_regions(tmp_path):
    written = write_reasonseg(tmp_path)
    reader = ReasonSegReader(written["folder"], "val")
    first, second = reader[0], reader[1]
    assert first.text == "which object is the colour of a fire truck?"  # LISA asks the first question
    np.testing.assert_array_equal(first.mask, written["target"])
    np.testing.assert_array_equal(first.ignore, written["ignore"])
    assert second.ignore is None and second.text == "what is green?"
    np.testing.assert_array_equal(second.mask, written["second"])
    with pytest.raises(BenchmarkDataError, match="not a folder"):
        ReasonSegReader(written["folder"], "test")


def test_coco_panoptic_decodes_rgb_ids_and_drops_crowd(tmp_path):
    written = write_coco_panoptic(tmp_path)
    reader = COCOPanopticReader(written["folder"], "val")
    assert reader.things == ["red box", "green box"] and reader.stuff == ["wall"]
    assert len(reader) == 3
    for k in range(3):
        np.testing.assert_array_equal(reader[k].target, written["targets"][k])
    assert (reader[2].target[..., 0] == 2).sum() == 0  # the crowd segment of image 3 is void


def test_ade20k_panoptic_in_detectron2s_layout_reads_like_coco(tmp_path):
    written = write_coco_panoptic(tmp_path, layout="ade20k")
    reader = COCOPanopticReader(written["folder"], "val", layout="ade20k")
    np.testing.assert_array_equal(reader[1].target, written["targets"][1])
    assert reader[1].image.parent.name == "validation"


def test_pascal_voc_uses_voc_names_and_scores_neither_background_nor_border(tmp_path):
    written = write_pascal_voc(tmp_path)
    reader = SemanticReader(written["folder"], "pascal-voc-20", "val")
    assert len(reader.class_names) == 20 and reader.class_names[14] == "person"
    np.testing.assert_array_equal(reader[0].label, written["label"])


def test_ade20k_and_pascal_context_labels_shift_by_one_with_zero_not_scored(tmp_path):
    ade = write_ade(tmp_path)
    reader = SemanticReader(ade["folder"], "ade20k", "val")
    assert reader.class_names == ade["classes"]  # first synonym of objectInfo150.csv's Name
    assert len(reader) == 2
    np.testing.assert_array_equal(reader[0].label, ade["labels"][0])
    assert (reader[0].label[:3] == -1).all()
    pc = write_pascal_context(tmp_path)
    reader = SemanticReader(pc["folder"], "pascal-context-59", "val")
    assert reader.class_names == ["aeroplane", "bag"]
    np.testing.assert_array_equal(reader[0].label, pc["label"])


def test_davis_gives_every_object_on_the_first_frame(tmp_path):
    written = write_davis(tmp_path)
    sample = VOSReader(written["folder"], "davis", "val")[0]
    assert sample.key == "boxes" and len(sample.frames) == 4 and sample.drop_last
    assert sample.starts == {1: 0, 2: 0}
    np.testing.assert_array_equal(sample.object_mask(2), written["ids"][2])


def test_youtube_vos_gives_each_object_on_its_first_annotated_frame(tmp_path):
    written = write_youtube_vos(tmp_path)
    sample = VOSReader(written["folder"], "youtube-vos", "train")[0]
    assert sample.starts == {1: 0, 2: 1} and not sample.drop_last
    assert [f.stem for f in sample.frames] == written["names"]


def test_ref_youtube_vos_masks_come_from_palette_pngs_by_object_id(tmp_path):
    written = write_ref_youtube_vos(tmp_path)
    reader = RefVOSReader(written["folder"], "train")
    assert len(reader) == 2
    sample = reader[1]
    assert sample.text == "the green box" and sample.kind == "referring"
    for t in range(3):
        np.testing.assert_array_equal(sample.masks(t, (H, W)), written["masks"][1][t])


def test_revos_masks_are_the_union_of_rle_annotations_and_types_are_kept(tmp_path):
    written = write_revos(tmp_path)
    reader = RefVOSReader(written["folder"], "valid")
    assert [reader[k].kind for k in range(2)] == ["referring", "reasoning"]
    for t in range(3):
        np.testing.assert_array_equal(reader[0].masks(t, (H, W)), written["red"][t])
        np.testing.assert_array_equal(reader[1].masks(t, (H, W)), written["both"][t])


def test_reasonvos_as_released_reads_its_expression_list_and_per_object_pngs(tmp_path):
    written = write_reasonvos(tmp_path)
    reader = RefVOSReader(written["folder"], "valid")
    sample = reader[0]
    assert len(reader) == 1 and sample.text == "which box could hold plants?" and sample.kind == "reasoning"
    for t in range(3):
        np.testing.assert_array_equal(sample.masks(t, (H, W)), written["green"][t])


def test_broken_json_is_one_clear_sentence(tmp_path):
    written = write_revos(tmp_path)
    (written["folder"] / "meta_expressions_valid_.json").write_text("{not json")
    with pytest.raises(BenchmarkDataError, match="is not valid JSON"):
        RefVOSReader(written["folder"], "valid")
