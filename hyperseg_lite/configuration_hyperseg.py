"""``HyperSegConfig``: one transformers config holding every part of the model, plus named presets.

Sub-configs:

* ``text_config`` - any ``AutoModelForCausalLM`` config (Phi-2 for ``3b``, a small Llama for ``tiny``/``lite``);
* ``vision_config`` - the global vision tower (SigLIP; any transformers vision config with hidden states);
* ``pyramid_config`` - the mask backbone giving 4 scales at strides 4/8/16/32 (Swin via ``SwinBackbone``);
* ``perceiver_config`` - the Fine-grained Visual Perceiver (FVP);
* ``decoder_config`` - the Mask2Former-style pixel decoder and masked-attention transformer decoder.

Presets (``HyperSegConfig.from_preset(name)``) are the same code with other numbers:
``tiny`` (unit tests), ``lite`` (the embedded model trained here), ``3b`` (the paper / released checkpoint),
and ``lite2`` (with ``tiny2`` for its tests): the embedded model's second design (convolutional image encoders
that stage 1,
``python -m hyperseg_lite.pretrain_vision``, pretrains on the world; a subword tokenizer), not part of HyperSeg.
"""

from __future__ import annotations

from typing import Any

from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec


class HyperSegPerceiverConfig(PreTrainedConfig):
    """Fine-grained Visual Perceiver: latents cross-attend to one pyramid scale per layer (paper Eq. 1-2).

    ``conditional_gate`` switches on the paper's ``P_j = P_{j-1} + tanh(MLP(P^_j)) * P^_j``; the released
    code has no gate (upstream issue #5), so the default follows the code.
    """

    model_type = "hyperseg_perceiver"

    num_latents: int = 128
    hidden_size: int = 512
    num_layers: int = 3
    num_heads: int = 8
    head_dim: int = 64
    ff_mult: int = 4
    conditional_gate: bool = False
    # indices into the 4 pyramid levels (res2..res5) that feed the perceiver, one per layer
    pyramid_levels: list[int] | tuple[int, ...] = (1, 2, 3)


class HyperSegDecoderConfig(PreTrainedConfig):
    """Mask2Former pixel decoder (multi-scale deformable attention) + masked-attention query decoder."""

    model_type = "hyperseg_decoder"

    hidden_dim: int = 256
    num_queries: int = 100
    num_heads: int = 8
    dim_feedforward: int = 2048
    num_layers: int = 9
    mask_dim: int = 256
    pixel_decoder_layers: int = 6
    pixel_decoder_ffn: int = 1024
    num_points: int = 4
    num_groups: int = 32
    # not in the release (off for converted checkpoints): prompt scores also read the shape of each mask token's
    # own mask (modeling/mask_shape.py), for backbones that were not pretrained
    mask_shape_embedding: bool = False
    # the release's other decoder path (``seg_concat=True``, PSALM's; off in the release and for converted
    # checkpoints): the referring embedding joins the mask queries through every decoder layer, so it looks at the
    # pixels before it scores them (modeling/mask_decoder.py)
    seg_concat: bool = False
    # not in the release (off for converted checkpoints): prompt scores also read the stride-4 pixel features
    # averaged under each mask token's own mask (modeling/mask_pooling.py), for encoders whose coarse levels lost
    # what the prompts name (the `lite2` encoders' colour)
    mask_pooled_scores: bool = False
    # what they average: "pixel_decoder" (its stride-4 mask_features) or "pyramid" (the backbone's stride-4 and
    # stride-8 stages, the ones that keep colour when the encoders are frozen)
    mask_pooled_features: str = "pixel_decoder"
    # not in the release (0 = off, and for converted checkpoints): the number of colour names of the colour
    # attribute scores, which multiply each referring probability by the probability that the mask has the colour
    # the expression states (modeling/attribute_scores.py)
    colour_attributes: int = 0
    # what their mask head averages under each mask: "pyramid" (the backbone's stride-4 and -8 stages, which keep
    # colour when the encoders are pretrained and frozen) or "pixel_decoder" (its mask_features)
    colour_attribute_features: str = "pyramid"
    # the same for the category the expression states (0 = off; else the number of shape categories), whose text
    # head can also say "a thing outside the world", which no mask has; its mask head reads "pixel_decoder" by
    # default (the pyramid's fine stages hold colour, not shape: shape probe 0.19 / 0.35 against 0.82); with a
    # two-stream pyramid "shape_stream" reads its shape channels of every stage, which colour cannot sway
    category_attributes: int = 0
    category_attribute_features: str = "pixel_decoder"
    # not in the release (False = off, and for converted checkpoints): a question that asks for the objects of
    # another's colour ("the same colour as the ring") is answered by comparing the masks' colours
    # (modeling/relation_scores.py); needs both attribute groups on
    colour_relation: bool = False
    # not in the release (False = off, and for converted checkpoints): a question that ranks objects by a fact of
    # their category ("the object with the most corners") picks the first-ranked category among the objects found
    # (modeling/ranking_scores.py); needs the category attribute group on
    category_ranking: bool = False
    # not in the release (False = off, and for converted checkpoints): a referring expression is answered with the
    # union of the tokens over config.referring_union_threshold only where it names several objects
    # (modeling/plurality_scores.py)
    plurality: bool = False


class HyperSegConfig(PreTrainedConfig):
    model_type = "hyperseg_lite"

    sub_configs_defaults = {
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="llama"),
        "vision_config": SubConfigSpec(config_class=AutoConfig, model_type="siglip_vision_model"),
        "pyramid_config": SubConfigSpec(config_class=AutoConfig, model_type="swin"),
        "perceiver_config": SubConfigSpec(config_class=HyperSegPerceiverConfig),
        "decoder_config": SubConfigSpec(config_class=HyperSegDecoderConfig),
    }

    text_config: dict | PreTrainedConfig | None = None
    vision_config: dict | PreTrainedConfig | None = None
    pyramid_config: dict | PreTrainedConfig | None = None
    perceiver_config: dict | PreTrainedConfig | None = None
    decoder_config: dict | PreTrainedConfig | None = None
    # not in the release (None = one stream, every preset's default and the converter's): a small colour stream
    # beside the pyramid, whose own stream then reads brightness alone (modeling/two_stream_pyramid.py)
    pyramid_colour_config: dict | None = None

    preset: str = "custom"
    # --- inputs ---
    image_size: int = 1024  # pyramid branch: longest side resized to this, then padded to a square
    pixel_mean: list[float] | tuple[float, ...] = (123.675, 116.28, 103.53)  # Mask2Former / ImageNet, 0-255
    pixel_std: list[float] | tuple[float, ...] = (58.395, 57.12, 57.375)
    pixel_pad_value: float = 128.0  # 0-255 value of the padding, before normalisation (release: FixedSizeCrop)
    global_image_mean: list[float] | tuple[float, ...] = (127.5, 127.5, 127.5)  # SigLIP: (x/255 - 0.5) / 0.5
    global_image_std: list[float] | tuple[float, ...] = (127.5, 127.5, 127.5)
    # --- global tower / projector ---
    vision_feature_layer: int = -2
    projector_hidden_act: str = "gelu"
    # --- tokens ---
    seg_token_id: int | None = None  # vocabulary id of [SEG], filled in from the tokenizer
    # --- visual prompts (radii in pixels at `region_reference_size`, scaled to the real image) ---
    region_num_points: int = 512
    point_radius: int = 10
    scribble_radius: int = 5
    region_reference_size: int = 1024
    # not in the release (off for converted checkpoints): a visual prompt's embedding also averages the pixel
    # decoder's stride-4 mask_features inside the region (HyperSegForSegmentation.pool_region_prompts), not only
    # the global tower's coarse grid, where one cell can hold a clicked object and its neighbours
    region_fine_features: bool = False
    # --- temporal adapter ---
    global_prompt_aggregation: bool = True
    local_space_time_injection: bool = True
    # --- losses (paper Eq. 5-6; defaults from Mask2Former where the paper gives none) ---
    loss_text_weight: float = 1.0
    loss_class_weight: float = 2.0
    loss_mask_bce_weight: float = 5.0
    loss_dice_weight: float = 5.0
    loss_instance_weight: float = 1.0
    loss_num_points: int = 12544
    no_object_weight: float = 0.1
    # not in HyperSeg: BCE of each prompt's best query score against "present" (0 = off, as the paper);
    # teaches a referring prompt to refuse what is not there (modeling/losses.prompt_presence_loss)
    loss_presence_weight: float = 0.0
    # which queries the presence loss reads for a present prompt: "best" (its best query, up) or "matched" (the
    # queries matched to its objects up, its best unmatched query down); an absent prompt's best query goes down
    loss_presence_query: str = "best"
    # --- prompts ---
    prompt_wording: str = "official"
    # "phi_v0" renders the release's conversation (system prompt + USER/ASSISTANT); "compact" drops the
    # 155-byte system prompt, which for a byte-level tokenizer is a third of every prompt (lite only).
    conversation_style: str = "phi_v0"
    max_text_tokens: int = 256  # longest user text (expression / question / class names) accepted
    # --- pipeline defaults for class prompts (a property of the trained weights: tools/class_threshold.py picks
    # them on the val split; 0.5 where nothing was measured, which the converter keeps for the release) ---
    semantic_threshold: float = 0.5  # semantic mode: pixels whose best class evidence is below it stay unlabelled
    segment_threshold: float = 0.5  # instance / panoptic / video instances: weaker candidate segments are dropped
    referring_threshold: float = 0.5  # referring / reasoning, images and videos: a weaker best mask is "no match"
    # not in HyperSeg: a referring expression's answer is the union of every mask token scoring at least this (with
    # the best one), so "all red objects" is drawn one object per token (pipeline/postprocess.referring_union);
    # 0 = the best token alone, as the release (what the converter writes)
    referring_union_threshold: float = 0.0
    # mask edges moved onto the image's own edges by a colour guided filter (pipeline/edge_refinement.py): its window
    # side in pixels at the working size and its eps, picked on the val split per checkpoint; 0 = off, the release's
    # masks (what the converter writes)
    edge_refinement_size: int = 0
    edge_refinement_eps: float = 1e-3

    def __post_init__(self, **kwargs: Any) -> None:
        super().__post_init__(**kwargs)
        if self.decoder_config.num_queries < 1:
            raise ValueError("decoder_config.num_queries must be positive")
        if len(self.perceiver_config.pyramid_levels) != self.perceiver_config.num_layers:
            raise ValueError("the perceiver needs one pyramid level per layer")

    # ------------------------------------------------------------------ presets
    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> HyperSegConfig:
        """Build a named preset: ``tiny``, ``lite`` or ``3b``; keyword overrides replace top-level fields."""
        try:
            builder = _PRESETS[name]
        except KeyError:
            raise ValueError(f"unknown preset {name!r}; choose one of {sorted(_PRESETS)}") from None
        kwargs = builder()
        kwargs.update(overrides)
        return cls(preset=name, **kwargs)

    @property
    def llm_hidden_size(self) -> int:
        return self.text_config.hidden_size

    @property
    def num_global_tokens(self) -> int:
        """Tokens the global tower puts at ``<image>``: a ViT's patch grid, or a conv tower's selected stage."""
        vision = self.vision_config
        if not hasattr(vision, "hidden_sizes"):  # a ViT
            return (vision.image_size // vision.patch_size) ** 2
        # ResNet / ConvNeXt: a stride-4 stem, then stride 2 per further stage; hidden_states[-k] is stage n-k+1
        stages = len(vision.hidden_sizes)
        stride = 2 ** (stages + 2 + self.vision_feature_layer)
        return (vision.image_size // stride) ** 2


def _tiny() -> dict[str, Any]:
    return dict(
        text_config=dict(
            model_type="llama",
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            vocab_size=272,
            max_position_embeddings=2048,
            tie_word_embeddings=False,
        ),
        vision_config=dict(
            model_type="siglip_vision_model",
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=32,
            patch_size=8,
            vision_use_head=False,
        ),
        pyramid_config=dict(
            model_type="swin",
            image_size=64,
            embed_dim=8,
            depths=[1, 1, 1, 1],
            num_heads=[1, 2, 2, 4],
            window_size=2,
            out_features=["stage1", "stage2", "stage3", "stage4"],
        ),
        perceiver_config=dict(num_latents=8, hidden_size=16, num_layers=3, num_heads=2, head_dim=8),
        decoder_config=dict(
            hidden_dim=32,
            num_queries=10,
            num_heads=4,
            dim_feedforward=64,
            num_layers=3,
            mask_dim=32,
            pixel_decoder_layers=1,
            pixel_decoder_ffn=64,
            num_points=4,
            num_groups=8,
        ),
        image_size=64,
        loss_num_points=256,
    )


def _lite() -> dict[str, Any]:
    return dict(
        text_config=dict(
            model_type="llama",
            hidden_size=256,
            intermediate_size=688,
            num_hidden_layers=4,
            num_attention_heads=4,
            num_key_value_heads=2,
            vocab_size=272,
            max_position_embeddings=2048,
            tie_word_embeddings=False,
        ),
        vision_config=dict(
            model_type="siglip_vision_model",
            hidden_size=128,
            intermediate_size=384,
            num_hidden_layers=3,
            num_attention_heads=4,
            image_size=128,
            patch_size=16,
            vision_use_head=False,
        ),
        pyramid_config=dict(
            model_type="swin",
            image_size=256,
            embed_dim=32,
            depths=[1, 1, 2, 1],
            num_heads=[1, 2, 4, 8],
            window_size=8,
            out_features=["stage1", "stage2", "stage3", "stage4"],
        ),
        perceiver_config=dict(num_latents=32, hidden_size=128, num_layers=3, num_heads=4, head_dim=32),
        decoder_config=dict(
            hidden_dim=128,
            num_queries=20,
            num_heads=4,
            dim_feedforward=512,
            num_layers=6,
            mask_dim=128,
            pixel_decoder_layers=2,
            pixel_decoder_ffn=256,
            num_points=4,
            num_groups=16,
        ),
        image_size=256,
        loss_num_points=4096,
        conversation_style="compact",
    )


def _3b() -> dict[str, Any]:
    """HyperSeg-3B as released: Mipha-3B (Phi-2) + SigLIP so400m/14-384 + Swin-B @1024 (see shared params table)."""
    return dict(
        text_config=dict(
            model_type="phi",
            hidden_size=2560,
            intermediate_size=10240,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=32,
            vocab_size=51200,
            partial_rotary_factor=0.4,
            layer_norm_eps=1e-5,
            hidden_act="gelu_new",
            max_position_embeddings=2048,
            tie_word_embeddings=False,
            rope_theta=10000.0,
        ),
        vision_config=dict(
            model_type="siglip_vision_model",
            hidden_size=1152,
            intermediate_size=4304,
            num_hidden_layers=27,
            num_attention_heads=16,
            image_size=384,
            patch_size=14,
            vision_use_head=False,
        ),
        pyramid_config=dict(
            model_type="swin",
            image_size=1024,
            embed_dim=128,
            depths=[2, 2, 18, 2],
            num_heads=[4, 8, 16, 32],
            window_size=12,
            out_features=["stage1", "stage2", "stage3", "stage4"],
        ),
        perceiver_config=dict(num_latents=128, hidden_size=512, num_layers=3, num_heads=8, head_dim=64),
        decoder_config=dict(
            hidden_dim=256,
            num_queries=100,
            num_heads=8,
            dim_feedforward=2048,
            num_layers=9,
            mask_dim=256,
            pixel_decoder_layers=6,
            pixel_decoder_ffn=1024,
            num_points=4,
            num_groups=32,
        ),
        image_size=1024,
        seg_token_id=50295,
    )


def conv_encoder_config(
    kind: str, widths: list[int], depths: list[int], image_size: int, backbone: bool = True, num_channels: int = 3
) -> dict[str, Any]:
    """A ResNet (BatchNorm, basic blocks) or ConvNeXt (LayerNorm) config at small sizes, from transformers.

    ``backbone=True`` asks for all stages as feature maps (the pyramid); otherwise it is a global tower read
    through its hidden states. ``num_channels=1``: a stream that reads one grey channel."""
    if kind == "resnet":
        config = dict(
            model_type="resnet",
            embedding_size=widths[0],
            hidden_sizes=list(widths),
            depths=list(depths),
            layer_type="basic",
            downsample_in_first_stage=False,
        )
    elif kind == "convnext":
        config = dict(
            model_type="convnext",
            num_stages=len(widths),
            hidden_sizes=list(widths),
            depths=list(depths),
            drop_path_rate=0.0,
        )
    else:
        raise ValueError(f"unknown convolutional encoder {kind!r}; choose resnet or convnext")
    config["image_size"] = image_size
    config["num_channels"] = num_channels
    if backbone:
        config["out_features"] = [f"stage{i + 1}" for i in range(len(widths))]
    return config


def _lite2() -> dict[str, Any]:
    """``lite`` with the v2 design: ResNet pyramid and global tower, a 2,048-entry subword vocabulary.

    The encoders were picked by measurement on the world (docs/research/embedded-v2.md) and are pretrained
    on its dense annotation (stage 1) before the rest is trained."""
    base = _lite()
    base["text_config"] = dict(base["text_config"], vocab_size=2048)
    base["pyramid_config"] = conv_encoder_config("resnet", [32, 64, 128, 256], [2, 2, 2, 2], image_size=256)
    base["vision_config"] = conv_encoder_config("resnet", [32, 64, 128], [1, 2, 2], image_size=128, backbone=False)
    base["vision_feature_layer"] = -1
    return base


def _tiny2() -> dict[str, Any]:
    """``tiny`` with the v2 design's convolutional encoders (unit tests of the ``lite2`` code paths)."""
    base = _tiny()
    base["pyramid_config"] = conv_encoder_config("resnet", [8, 16, 16, 32], [1, 1, 1, 1], image_size=64)
    base["vision_config"] = conv_encoder_config("convnext", [8, 16, 32], [1, 1, 1], image_size=32, backbone=False)
    base["vision_feature_layer"] = -1
    return base


_PRESETS = {"tiny": _tiny, "tiny2": _tiny2, "lite": _lite, "lite2": _lite2, "3b": _3b}
PRESET_NAMES = tuple(_PRESETS)
