"""Readers for the benchmarks' own formats: the user points at a folder, nothing is downloaded.

Every reader is a sequence of samples (``len``, ``reader[i]``) that loads one sample at a time, so a benchmark
of any size runs in bounded memory and shards by index across processes. Formats (what ``--data`` holds):

* ``referring.RefCOCOReader``: RefCOCO / RefCOCO+ / RefCOCOg / gRefCOCO as the JSON exports people use:
  ``refs(unc).json`` / ``refs(umd).json`` / ``grefs(unc).json`` (the refer toolkit's ``refs(*).p`` written
  out as JSON; gRefCOCO ships JSON) + the COCO ``instances.json``. Pickles are never opened.
* ``reasonseg.ReasonSegReader``: LISA's ReasonSeg, ``<split>/*.jpg`` + one JSON of polygons per image.
* ``panoptic.COCOPanopticReader``: ``panoptic_<split>2017.json`` + its PNGs (ids as R + 256 G + 256^2 B).
* ``semantic.SemanticReader``: ADE20K-150 and PASCAL-Context-59 label PNGs + a class list.
* ``vos.VOSReader``: DAVIS-2017 and YouTube-VOS folders (JPEG frames + palette PNG annotations).
* ``refvos.RefVOSReader``: Ref-YouTube-VOS / Ref-DAVIS17 ``meta_expressions.json`` (+ palette PNGs), ReVOS
  meta JSON (+ ``mask_dict.json`` of RLEs) and ReasonVOS as released (an expression list + per-object PNGs).
"""

from .common import BenchmarkDataError
from .panoptic import COCOPanopticReader
from .reasonseg import ReasonSegReader
from .referring import RefCOCOReader
from .refvos import RefVOSReader
from .semantic import SemanticReader
from .vos import VOSReader

__all__ = [
    "BenchmarkDataError",
    "COCOPanopticReader",
    "ReasonSegReader",
    "RefCOCOReader",
    "RefVOSReader",
    "SemanticReader",
    "VOSReader",
]
