"""hyperseg-lite: HyperSeg (universal segmentation with an LLM) as a small, tested, runnable package."""

# Known to the Auto classes, so transformers reads our config.json as ours (AutoTokenizer opens it too)
from transformers import AutoConfig, AutoModel  # noqa: E402

from .configuration_hyperseg import HyperSegConfig, HyperSegDecoderConfig, HyperSegPerceiverConfig
from .loading import LoadedModel, build_random_model, load_model
from .modeling.modeling_hyperseg import HyperSegForSegmentation, HyperSegOutput, ImageFeatures
from .modeling.temporal_adapter import TemporalState
from .pipeline import (  # noqa: E402
    Candidates,
    EncodedImage,
    HyperSegPipeline,
    HyperSegPredictor,
    Region,
    SegmentationResult,
    VideoSession,
)
from .processing_hyperseg import HyperSegProcessor

AutoConfig.register(HyperSegConfig.model_type, HyperSegConfig, exist_ok=True)
AutoModel.register(HyperSegConfig, HyperSegForSegmentation, exist_ok=True)

__all__ = [
    "HyperSegConfig",
    "HyperSegDecoderConfig",
    "HyperSegPerceiverConfig",
    "HyperSegForSegmentation",
    "HyperSegOutput",
    "HyperSegProcessor",
    "ImageFeatures",
    "Candidates",
    "EncodedImage",
    "HyperSegPipeline",
    "HyperSegPredictor",
    "Region",
    "SegmentationResult",
    "VideoSession",
    "LoadedModel",
    "TemporalState",
    "build_random_model",
    "load_model",
]
__version__ = "0.1.0"
