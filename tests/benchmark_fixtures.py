"""Tiny benchmark folders in the real formats, written by the tests (nothing is downloaded).

Each writer returns the folder and the ground truth it drew, so a reader test compares what it reads with what
was written. Images are small coloured rectangles on grey, so the embedded model has something to segment.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

H, W = 48, 64
PALETTE = [0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0] + [0] * (256 * 3 - 12)


def picture(boxes, colours=((220, 40, 40), (40, 200, 60), (40, 60, 220)), size=(H, W)) -> np.ndarray:
    image = np.full((*size, 3), 128, dtype=np.uint8)
    for (x0, y0, x1, y1), colour in zip(boxes, colours):
        image[y0:y1, x0:x1] = colour
    return image


def box_mask(box, size=(H, W)) -> np.ndarray:
    mask = np.zeros(size, dtype=bool)
    x0, y0, x1, y1 = box
    mask[y0:y1, x0:x1] = True
    return mask


def save_jpeg(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, quality=95)


def save_palette(path: Path, ids: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(ids.astype(np.uint8), mode="P")
    image.putpalette(PALETTE)
    image.save(path)


def polygon(box) -> list[float]:
    x0, y0, x1, y1 = box
    return [x0, y0, x1, y0, x1, y1, x0, y1]


def rle_of(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": list(rle["size"]), "counts": rle["counts"].decode("ascii")}


BOXES = [(4, 6, 24, 30), (34, 10, 58, 40)]


def write_refcoco(root: Path) -> dict:
    """``refcoco/`` (refs(unc).json + grefs(unc).json + instances.json) and ``images/mscoco/images/train2014``."""
    folder = root / "refcoco"
    folder.mkdir(parents=True)
    images = root / "images" / "mscoco" / "images" / "train2014"
    for image_id in (1, 2):
        save_jpeg(images / f"COCO_train2014_{image_id:012d}.jpg", picture(BOXES))
    masks = {10: box_mask(BOXES[0]), 11: box_mask(BOXES[1]), 20: box_mask(BOXES[0]), 21: box_mask(BOXES[1])}
    # COCO annotations: polygons for the first, RLE (as iscrowd regions are stored) for the second of each image
    annotations = []
    for ann_id, image_id, box, as_rle in (
        (10, 1, BOXES[0], False),
        (11, 1, BOXES[1], True),
        (20, 2, BOXES[0], False),
        (21, 2, BOXES[1], False),
    ):
        segmentation = rle_of(masks[ann_id]) if as_rle else [polygon(box)]
        annotations.append(
            {
                "id": ann_id,
                "image_id": image_id,
                "category_id": 1,
                "segmentation": segmentation,
                "area": float(masks[ann_id].sum()),
                "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]],
                "iscrowd": 0,
            }
        )
    instances = {
        "images": [{"id": i, "file_name": f"COCO_train2014_{i:012d}.jpg", "height": H, "width": W} for i in (1, 2)],
        "annotations": annotations,
        "categories": [{"id": 1, "name": "thing"}],
    }
    (folder / "instances.json").write_text(json.dumps(instances))

    def sent(text, k):
        return {"sent": text, "raw": text, "sent_id": k, "tokens": text.split()}

    refs = [
        {
            "ref_id": 0,
            "ann_id": 10,
            "image_id": 1,
            "split": "val",
            "category_id": 1,
            "sent_ids": [0, 1],
            "sentences": [sent("the red box on the left", 0), sent("red square", 1)],
        },
        {
            "ref_id": 1,
            "ann_id": 11,
            "image_id": 1,
            "split": "val",
            "category_id": 1,
            "sent_ids": [2],
            "sentences": [sent("the green box", 2)],
        },
        {
            "ref_id": 2,
            "ann_id": 21,
            "image_id": 2,
            "split": "testA",
            "category_id": 1,
            "sent_ids": [3],
            "sentences": [sent("green one on the right", 3)],
        },
    ]
    (folder / "refs(unc).json").write_text(json.dumps(refs))
    grefs = [
        {
            "ref_id": 0,
            "ann_id": [20, 21],
            "image_id": 2,
            "split": "val",
            "category_id": [1],
            "no_target": False,
            "sentences": [sent("both boxes", 0)],
        },
        {
            "ref_id": 1,
            "ann_id": [-1],
            "image_id": 2,
            "split": "val",
            "category_id": [],
            "no_target": True,
            "sentences": [sent("the purple dog", 1)],
        },
        {
            "ref_id": 2,
            "ann_id": [20],
            "image_id": 2,
            "split": "val",
            "category_id": [1],
            "no_target": False,
            "sentences": [sent("the red box", 2)],
        },
    ]
    (folder / "grefs(unc).json").write_text(json.dumps(grefs))
    # MDETR's export of the same val split: one image entry per sentence, its annotations by image_id
    entries = [(0, "the red box on the left", 10), (0, "red square", 10), (1, "the green box", 11)]
    mdetr = {
        "images": [
            {
                "id": k,
                "file_name": "COCO_train2014_000000000001.jpg",
                "height": H,
                "width": W,
                "caption": text,
                "original_id": 1,
                "dataset_name": "refcoco",
            }
            for k, (_, text, _) in enumerate(entries)
        ],
        "annotations": [
            dict(instances["annotations"][[10, 11, 20, 21].index(ann)], id=100 + k, image_id=k)
            for k, (_, _, ann) in enumerate(entries)
        ],
        "categories": [{"id": 1, "name": "thing"}],
    }
    (folder / "final_refcoco_val.json").write_text(json.dumps(mdetr))
    return {
        "folder": folder,
        "val_masks": [masks[10], masks[10], masks[11]],
        "val_texts": ["the red box on the left", "red square", "the green box"],
        "grefs_masks": [masks[20] | masks[21], np.zeros((H, W), bool), masks[20]],
    }


def write_reasonseg(root: Path) -> dict:
    """LISA's ReasonSeg: ``val/<name>.jpg`` + ``val/<name>.json`` (target, ignore and flag polygons)."""
    folder = root / "ReasonSeg" / "val"
    save_jpeg(folder / "a1.jpg", picture(BOXES))
    shapes = [
        {"label": "target", "points": [[4, 6], [23, 6], [23, 29], [4, 29]], "shape_type": "polygon"},
        {"label": "ignore", "points": [[8, 10], [12, 10], [12, 14], [8, 14]], "shape_type": "polygon"},
        {"label": "flag", "points": [[40, 40], [44, 40], [44, 44]], "shape_type": "polygon"},
    ]
    (folder / "a1.json").write_text(
        json.dumps(
            {"text": ["which object is the colour of a fire truck?", "second"], "is_sentence": True, "shapes": shapes}
        )
    )
    save_jpeg(folder / "b2.jpg", picture(BOXES))
    shapes = [{"label": "target", "points": [[34, 10], [57, 10], [57, 39], [34, 39]], "shape_type": "polygon"}]
    (folder / "b2.json").write_text(json.dumps({"text": "what is green?", "is_sentence": False, "shapes": shapes}))
    target = box_mask((4, 6, 24, 30))
    ignore = box_mask((8, 10, 13, 15))
    return {"folder": folder.parent, "target": target & ~ignore, "ignore": ignore, "second": box_mask((34, 10, 58, 40))}


def write_coco_panoptic(root: Path, layout: str = "coco") -> dict:
    """COCO panoptic: ``annotations/panoptic_val2017.json`` + PNGs with RGB-encoded ids + ``val2017/`` images;
    ``layout="ade20k"``: detectron2's ADE20K panoptic files in ``ADEChallengeData2016``."""
    folder = root / ("coco" if layout == "coco" else "ADEChallengeData2016")
    json_path = (
        folder / "annotations" / "panoptic_val2017.json" if layout == "coco" else folder / "ade20k_panoptic_val.json"
    )
    png_dir = json_path.with_suffix("")
    image_dir = folder / "val2017" if layout == "coco" else folder / "images" / "validation"
    raw = (1, 2, 184) if layout == "coco" else (0, 1, 2)  # some exports number categories from 0
    categories = [
        {"id": raw[0], "name": "red box", "isthing": 1, "supercategory": "x"},
        {"id": raw[1], "name": "green box", "isthing": 1, "supercategory": "x"},
        {"id": raw[2], "name": "wall", "isthing": 0, "supercategory": "y"},
    ]
    contiguous = {r: k + 1 for k, r in enumerate(raw)}  # what the reader returns: 1..K, 0 = void
    annotations, images, targets = [], [], []
    for image_id in (1, 2, 3):
        name = f"{image_id:012d}"
        save_jpeg(image_dir / f"{name}.jpg", picture(BOXES))
        ids = np.full((H, W), 5 + 256 * 1, dtype=np.int64)  # the wall: id 261 (R 5, G 1)
        ids[box_mask(BOXES[0])] = 1000 + image_id
        ids[box_mask(BOXES[1])] = 70000 + image_id  # needs the B channel
        ids[:2, :2] = 0  # unlabelled
        segments = [
            {"id": 261, "category_id": raw[2], "iscrowd": 0},
            {"id": 1000 + image_id, "category_id": raw[0], "iscrowd": 0},
            {"id": 70000 + image_id, "category_id": raw[1], "iscrowd": int(image_id == 3)},
        ]
        rgb = np.stack([ids % 256, ids // 256 % 256, ids // 65536], -1).astype(np.uint8)
        png_dir.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rgb).save(png_dir / f"{name}.png")
        annotations.append({"image_id": image_id, "file_name": f"{name}.png", "segments_info": segments})
        images.append({"id": image_id, "file_name": f"{name}.jpg", "height": H, "width": W})
        target = np.zeros((H, W, 2), dtype=np.int64)
        for s in segments:
            if not s["iscrowd"]:
                target[ids == s["id"]] = (contiguous[s["category_id"]], s["id"])
        targets.append(target)
    json_path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return {"folder": folder, "targets": targets}


def write_ade(root: Path) -> dict:
    """ADEChallengeData2016: images/validation, annotations/validation (0 = unlabelled), objectInfo150.csv."""
    folder = root / "ADEChallengeData2016"
    labels = []
    for k in range(2):
        save_jpeg(folder / "images" / "validation" / f"ADE_val_{k:08d}.jpg", picture(BOXES))
        label = np.full((H, W), 1, dtype=np.uint8)  # wall
        label[box_mask(BOXES[0])] = 2
        label[box_mask(BOXES[1])] = 3
        label[:3] = 0
        (folder / "annotations" / "validation").mkdir(parents=True, exist_ok=True)
        Image.fromarray(label, mode="L").save(folder / "annotations" / "validation" / f"ADE_val_{k:08d}.png")
        labels.append(label.astype(np.int64) - 1)
    (folder / "objectInfo150.csv").write_text(
        'Idx,Ratio,Train,Val,Name\n1,0.1,1,1,wall\n2,0.1,1,1,"box;crate"\n3,0.1,1,1,plant;flora\n'
    )
    return {"folder": folder, "labels": labels, "classes": ["wall", "box", "plant"]}


def write_pascal_context(root: Path) -> dict:
    folder = root / "VOCdevkit" / "VOC2010"
    save_jpeg(folder / "JPEGImages" / "2008_000001.jpg", picture(BOXES))
    label = np.zeros((H, W), dtype=np.uint8)  # background (not scored)
    label[box_mask(BOXES[0])] = 1
    label[box_mask(BOXES[1])] = 2
    (folder / "SegmentationClassContext").mkdir(parents=True)
    Image.fromarray(label, mode="L").save(folder / "SegmentationClassContext" / "2008_000001.png")
    (folder / "ImageSets" / "SegmentationContext").mkdir(parents=True)
    (folder / "ImageSets" / "SegmentationContext" / "val.txt").write_text("2008_000001\n")
    (folder / "classes.txt").write_text("aeroplane\nbag\n")
    return {"folder": folder, "label": label.astype(np.int64) - 1}


def write_pascal_voc(root: Path) -> dict:
    """VOC2012: JPEGImages, palette SegmentationClass (0 background, 255 border), ImageSets/Segmentation/val.txt."""
    folder = root / "VOCdevkit" / "VOC2012"
    save_jpeg(folder / "JPEGImages" / "2007_000033.jpg", picture(BOXES))
    label = np.zeros((H, W), dtype=np.uint8)
    label[box_mask(BOXES[0])] = 1  # aeroplane
    label[box_mask(BOXES[1])] = 15  # person
    label[box_mask(BOXES[1]) & ~box_mask((35, 11, 57, 39))] = 255  # the border VOC draws around objects
    save_palette(folder / "SegmentationClass" / "2007_000033.png", label)
    (folder / "ImageSets" / "Segmentation").mkdir(parents=True)
    (folder / "ImageSets" / "Segmentation" / "val.txt").write_text("2007_000033\n")
    expected = label.astype(np.int64) - 1
    expected[(label == 0) | (label == 255)] = -1
    return {"folder": folder, "label": expected}


def moving_boxes(t: int) -> list[tuple[int, int, int, int]]:
    return [(4 + 2 * t, 6, 24 + 2 * t, 30), (34, 10 + t, 58, 40 + t) if t < 6 else (34, 16, 58, 46)]


def write_davis(root: Path, frames: int = 4) -> dict:
    """DAVIS-2017: JPEGImages/480p/<seq>, palette Annotations/480p/<seq>, ImageSets/2017/val.txt."""
    folder = root / "DAVIS"
    truth = []
    for t in range(frames):
        boxes = moving_boxes(t)
        save_jpeg(folder / "JPEGImages" / "480p" / "boxes" / f"{t:05d}.jpg", picture(boxes))
        ids = np.zeros((H, W), dtype=np.uint8)
        ids[box_mask(boxes[0])] = 1
        ids[box_mask(boxes[1])] = 2
        save_palette(folder / "Annotations" / "480p" / "boxes" / f"{t:05d}.png", ids)
        truth.append(ids)
    (folder / "ImageSets" / "2017").mkdir(parents=True)
    (folder / "ImageSets" / "2017" / "val.txt").write_text("boxes\n")
    return {"folder": folder, "ids": truth}


def write_youtube_vos(root: Path, frames: int = 4) -> dict:
    """YouTube-VOS: <split>/JPEGImages, <split>/Annotations (object 2 appears on frame 1), <split>/meta.json."""
    folder = root / "ytvos"
    names = [f"{5 * t:05d}" for t in range(frames)]
    for t, name in enumerate(names):
        boxes = moving_boxes(t)
        save_jpeg(folder / "train" / "JPEGImages" / "v1" / f"{name}.jpg", picture(boxes))
        ids = np.zeros((H, W), dtype=np.uint8)
        ids[box_mask(boxes[0])] = 1
        if t >= 1:
            ids[box_mask(boxes[1])] = 2
        save_palette(folder / "train" / "Annotations" / "v1" / f"{name}.png", ids)
    meta = {
        "videos": {
            "v1": {
                "objects": {"1": {"category": "box", "frames": names}, "2": {"category": "box", "frames": names[1:]}}
            }
        }
    }
    (folder / "train" / "meta.json").write_text(json.dumps(meta))
    return {"folder": folder, "names": names}


def write_ref_youtube_vos(root: Path, frames: int = 3) -> dict:
    """Ref-YouTube-VOS: meta_expressions/<split>/meta_expressions.json, <split>/JPEGImages, <split>/Annotations."""
    folder = root / "ref-youtube-vos"
    names = [f"{5 * t:05d}" for t in range(frames)]
    for t, name in enumerate(names):
        boxes = moving_boxes(t)
        save_jpeg(folder / "train" / "JPEGImages" / "v1" / f"{name}.jpg", picture(boxes))
        ids = np.zeros((H, W), dtype=np.uint8)
        ids[box_mask(boxes[0])] = 1
        ids[box_mask(boxes[1])] = 2
        save_palette(folder / "train" / "Annotations" / "v1" / f"{name}.png", ids)
    meta = {
        "videos": {
            "v1": {
                "expressions": {
                    "0": {"exp": "the red box moving right", "obj_id": "1"},
                    "1": {"exp": "the green box", "obj_id": "2"},
                },
                "frames": names,
            }
        }
    }
    (folder / "meta_expressions" / "train").mkdir(parents=True)
    (folder / "meta_expressions" / "train" / "meta_expressions.json").write_text(json.dumps(meta))
    return {"folder": folder, "masks": [[box_mask(moving_boxes(t)[k]) for t in range(frames)] for k in range(2)]}


def write_revos(root: Path, frames: int = 3) -> dict:
    """ReVOS / ReasonVOS: JPEGImages/<vid>, meta_expressions_valid_.json (anno_id, type_id), mask_dict.json (RLEs)."""
    folder = root / "ReVOS"
    names = [f"{t:05d}" for t in range(frames)]
    for t, name in enumerate(names):
        save_jpeg(folder / "JPEGImages" / "v1" / f"{name}.jpg", picture(moving_boxes(t)))
    red = [rle_of(box_mask(moving_boxes(t)[0])) for t in range(frames)]
    green = [rle_of(box_mask(moving_boxes(t)[1])) if t else None for t in range(frames)]
    (folder / "mask_dict.json").write_text(json.dumps({"7": red, "8": green}))
    meta = {
        "videos": {
            "v1": {
                "vid_id": 1,
                "frames": names,
                "expressions": {
                    "0": {"exp": "the red box", "obj_id": [0], "anno_id": [7], "type_id": 0},
                    "1": {"exp": "what could hold plants?", "obj_id": [0, 1], "anno_id": [7, 8], "type_id": 1},
                },
            }
        }
    }
    (folder / "meta_expressions_valid_.json").write_text(json.dumps(meta))
    both = [box_mask(moving_boxes(t)[0]) | (box_mask(moving_boxes(t)[1]) if t else False) for t in range(frames)]
    return {"folder": folder, "red": [box_mask(moving_boxes(t)[0]) for t in range(frames)], "both": both}


def write_reasonvos(root: Path, frames: int = 3) -> dict:
    """ReasonVOS as released: meta_expressions.json (a list of expressions, source, frames), JPEGImages/<vid>,
    one binary PNG per frame in Annotations/<source>_<vid>_<obj_id>/."""
    folder = root / "ReasonVOS"
    names = [f"{t:05d}" for t in range(frames)]
    for t, name in enumerate(names):
        save_jpeg(folder / "JPEGImages" / "v9" / f"{name}.jpg", picture(moving_boxes(t)))
        mask = box_mask(moving_boxes(t)[1]).astype(np.uint8) * 255
        (folder / "Annotations" / "MeViS_v9_2").mkdir(parents=True, exist_ok=True)
        Image.fromarray(mask, mode="L").save(folder / "Annotations" / "MeViS_v9_2" / f"{name}.png")
    meta = {
        "videos": {
            "v9": {
                "source": "MeViS",
                "frames": names,
                "expressions": [
                    {"exp_id": 0, "obj_id": 2, "exp_text": "which box could hold plants?", "is_sent": True}
                ],
            }
        }
    }
    (folder / "meta_expressions.json").write_text(json.dumps(meta))
    return {"folder": folder, "green": [box_mask(moving_boxes(t)[1]) for t in range(frames)]}
