"""Task pipeline: pre/post-processing around the model, one call per HyperSeg task."""

from .inputs import MAX_CLASSES, MAX_IMAGE_PIXELS, MAX_VIDEO_FRAMES, Region, iter_video, load_image, load_video
from .pipeline import HyperSegPipeline
from .results import SegmentationResult

__all__ = ["HyperSegPipeline", "MAX_CLASSES", "MAX_IMAGE_PIXELS", "MAX_VIDEO_FRAMES", "Region", "SegmentationResult",
           "iter_video", "load_image", "load_video"]
