"""Task pipeline and its middle layer.

``HyperSegPredictor`` encodes an image once and answers any number of prompts about it (``EncodedImage``,
``Candidates``); ``HyperSegPipeline`` turns those answers into one ``SegmentationResult`` per HyperSeg task;
``VideoSession`` follows visual prompts given on any frame of a clip.
"""

from .inputs import MAX_CLASSES, MAX_IMAGE_PIXELS, MAX_VIDEO_FRAMES, Region, iter_video, load_image, load_video
from .pipeline import NAMING_SAMPLES, HyperSegPipeline
from .predictor import Candidates, EncodedImage, HyperSegPredictor
from .results import SegmentationResult
from .video import TrackBank, VideoSession
from .video_frames import VideoFrames

__all__ = [
    "Candidates",
    "EncodedImage",
    "HyperSegPipeline",
    "HyperSegPredictor",
    "MAX_CLASSES",
    "MAX_IMAGE_PIXELS",
    "MAX_VIDEO_FRAMES",
    "NAMING_SAMPLES",
    "Region",
    "SegmentationResult",
    "TrackBank",
    "VideoFrames",
    "VideoSession",
    "iter_video",
    "load_image",
    "load_video",
]
