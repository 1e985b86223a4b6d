"""A pyramid of two streams: shapes from brightness alone, colour from a small stream of its own.

Not in HyperSeg (whose Swin-B comes pretrained on COCO; the ``3b`` preset keeps its single stream). In the world
every category is drawn in eight or nine of the ten colours, the rest held out for the compositional split; a
single pyramid trained on the others learns that a colour is evidence against the categories never drawn in it,
and then does not draw those objects at all, not even under a box (docs/research/embedded-v2.md, "Where the
compositional clips lose"). Here the shape stream only ever sees one grey channel: at inference the image's
luminance, in stage 1 every segment at a random brightness (``training/colour_blind_shapes.grey``), so brightness
tells it nothing about a category and it cannot learn the veto. A small colour stream sees the colour image for what
needs colour (stuff, the colour words). Each level is the two streams' maps side by side, shape channels first
(:attr:`TwoStreamPyramid.shape_channels`), so every consumer of the pyramid reads it as one.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import AutoConfig, PreTrainedConfig

from .pyramid_backbone import PyramidBackbone

LUMINANCE = (0.299, 0.587, 0.114)  # ITU-R BT.601, as PIL's "L" mode


class TwoStreamPyramid(nn.Module):
    def __init__(
        self, shape_config: PreTrainedConfig, colour_config: PreTrainedConfig, pixel_std: tuple[float, ...]
    ) -> None:
        super().__init__()
        # one channel: the stream reads the luminance; three: the image itself (stage 1 then shows it every segment
        # in a random colour, ``training/colour_blind_shapes.recolour``)
        self.shape_reads_colour = getattr(shape_config, "num_channels", 3) == 3
        self.shape = PyramidBackbone(shape_config)
        self.colour = PyramidBackbone(colour_config)
        # normalised pixels n_c = (x_c - mean_c) / std_c, so sum_c luma_c std_c n_c is the luminance less a constant
        weights = torch.tensor(LUMINANCE) * torch.tensor(pixel_std, dtype=torch.float32)
        self.register_buffer("luminance_weights", (weights / weights.sum()).view(1, 3, 1, 1), persistent=False)

    @property
    def shape_channels(self) -> list[int]:
        return self.shape.channels

    @property
    def channels(self) -> list[int]:
        return [s + c for s, c in zip(self.shape.channels, self.colour.channels)]

    def luminance(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) normalised pixels -> (B, 1, S, S) their luminance (up to an offset the stem absorbs)."""
        return (pixel_values * self.luminance_weights.to(pixel_values.dtype)).sum(1, keepdim=True)

    def forward(self, pixel_values: torch.Tensor, shape_pixel_values: torch.Tensor | None = None) -> list[torch.Tensor]:
        """(B, 3, S, S) -> 4 levels (B, C_shape + C_colour, ...). ``shape_pixel_values`` (stage 1: the batch with
        every segment at a random brightness) replaces the image the shape stream reads; by default the image."""
        shape_input = pixel_values if shape_pixel_values is None else shape_pixel_values
        if not self.shape_reads_colour:
            shape_input = self.luminance(shape_input)
        return [torch.cat(maps, 1) for maps in zip(self.shape(shape_input), self.colour(pixel_values))]


def first_channels(levels: list[torch.Tensor], channels: list[int]) -> list[torch.Tensor]:
    """Each level's first ``channels[i]`` channels (a two-stream pyramid's shape stream)."""
    return [level[:, :c] for level, c in zip(levels, channels)]


def build_pyramid(config) -> nn.Module:
    """The pyramid a :class:`~..configuration_hyperseg.HyperSegConfig` asks for: one stream (every preset by
    default, the release's Swin-B), or two when ``pyramid_colour_config`` is set."""
    if config.pyramid_colour_config is None:
        return PyramidBackbone(config.pyramid_config)
    colour = dict(config.pyramid_colour_config)
    colour_config = AutoConfig.for_model(colour.pop("model_type"), **colour)
    return TwoStreamPyramid(config.pyramid_config, colour_config, tuple(config.pixel_std))
