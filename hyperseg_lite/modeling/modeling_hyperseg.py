"""``HyperSegForSegmentation``: composes the parts; each part lives in its own file.

Data flow for one frame (paper Fig. 2):

1. ``encode_images``: pyramid features (Swin) -> pixel decoder (mask features + 3 scales) and the FVP tokens;
   global tokens (SigLIP -> projector). Computed once per image and reusable for many prompts
   (:meth:`ImageFeatures.select`).
2. ``segment``: prompt ids -> one LLM pass with every placeholder filled (:mod:`.prompt_assembly`) ->
   HER reads mask tokens and prompt embeddings (:mod:`.entity_recognition`) -> temporal adapter
   (video) -> masked-attention decoder -> masks, per-prompt scores, instance embeddings.
3. ``forward`` = both, plus the losses when targets / labels are given.

The model knows nothing of files, UIs or datasets: inputs are tensors made by :mod:`..processing_hyperseg`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModelForCausalLM, PreTrainedModel
from transformers.utils import ModelOutput

from ..configuration_hyperseg import HyperSegConfig
from ..constants import IGNORE_INDEX, TEMPORAL_TOKEN_INDEX
from .attribute_scores import ATTRIBUTE_GROUPS
from .entity_recognition import HybridEntityRecognition, PromptEmbeddings, gather_fixed
from .losses import HyperSegCriterion, SegmentationTarget, instance_contrastive_loss
from .mask_decoder import MaskDecoder
from .mask_pooling import POOLED_SOURCES, MaskPooledFeatures, upsampled_concat
from .matcher import HungarianMatcher
from .perceiver import FineGrainedVisualPerceiver
from .pixel_decoder import PixelDecoder
from .plurality_scores import PLURALITY_GROUP
from .prefix_cache import PrefixReuse
from .prompt_assembly import assemble_inputs_embeds, position_ids_from_mask
from .prompt_layout import PROMPT_KINDS, PromptLayout
from .ranking_scores import RANKING_GROUP
from .region_pooling import pool_regions
from .relation_scores import RELATION_GROUP
from .temporal_adapter import TemporalState, aggregate_prompts
from .two_stream_pyramid import build_pyramid, first_channels
from .vision_tower import GlobalVisionTower


@dataclass
class ImageFeatures:
    """Everything computed from the pixels alone (plus the FVP latents in video)."""

    mask_features: torch.Tensor  # (B, mask_dim, S/4, S/4)
    multi_scale_features: list[torch.Tensor]  # 3 scales for the masked-attention decoder
    global_tokens: torch.Tensor  # (B, N, H) projected global vision tokens
    fvp_tokens: torch.Tensor  # (B, P, H) Fine-grained Visual Perceiver tokens
    perceiver_attention: list[torch.Tensor] = field(default_factory=list)
    # per mask-pooled source other than the pixel decoder ("pyramid", "shape_stream"): (B, C, S/4, S/4) features,
    # present when a mask-pooled module reads them
    pooled_features: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def batch_size(self) -> int:
        return self.mask_features.shape[0]

    def select(self, index: torch.Tensor | Sequence[int]) -> ImageFeatures:
        """Rows ``index`` (e.g. ``[0, 0, 0]`` to ask three prompts about one image without re-encoding it)."""
        index = torch.as_tensor(index, dtype=torch.long).to(self.mask_features.device, non_blocking=True)
        pick = lambda t: t.index_select(0, index)  # noqa: E731
        return ImageFeatures(
            pick(self.mask_features),
            [pick(t) for t in self.multi_scale_features],
            pick(self.global_tokens),
            pick(self.fvp_tokens),
            [pick(a) for a in self.perceiver_attention],
            {source: pick(t) for source, t in self.pooled_features.items()},
        )


@dataclass
class HyperSegOutput(ModelOutput):
    """All outputs of one frame. ``prompt_logits`` unifies the three prompt kinds per sample."""

    loss: torch.Tensor | None = None
    loss_dict: dict[str, torch.Tensor] | None = None
    pred_masks: torch.Tensor | None = None  # (B, Q, S/4, S/4) logits on the padded square
    prompt_logits: torch.Tensor | None = None  # (B, Q, K): query q vs prompt k (expression / class / region)
    prompt_valid: torch.Tensor | None = None  # (B, K)
    prompt_kind: list[str] | None = None  # per sample: "refer", "class" or "region"
    instance_embeddings: torch.Tensor | None = None  # (B, Q, D) for association across frames
    query_states: torch.Tensor | None = None
    # attribute scores, per group that is on ("colour", "category"): each token's value (B, Q, K), and what the
    # expression states (B, 1, K + 1 or + 2: none, outside the world)
    attribute_logits: dict[str, torch.Tensor] | None = None
    refer_attribute_logits: dict[str, torch.Tensor] | None = None
    text_logits: torch.Tensor | None = None  # only at supervised positions, when labels are given
    temporal_state: TemporalState | None = None
    matched_indices: list[tuple[torch.Tensor, torch.Tensor]] | None = None
    aux_outputs: list[dict] | None = None
    intermediate_masks: list[torch.Tensor] | None = None
    perceiver_attention: list[torch.Tensor] | None = None


class HyperSegPreTrainedModel(PreTrainedModel):
    config_class = HyperSegConfig
    base_model_prefix = "hyperseg"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _supports_sdpa = True

    def _init_weights(self, module: nn.Module) -> None:
        """Every part initialises itself in its constructor (sub-models via their own ``post_init``)."""


class HyperSegForSegmentation(HyperSegPreTrainedModel):
    def __init__(self, config: HyperSegConfig) -> None:
        super().__init__(config)
        llm_hidden = config.text_config.hidden_size
        dec = config.decoder_config
        per = config.perceiver_config
        self.llm = AutoModelForCausalLM.from_config(config.text_config)
        self.global_vision = GlobalVisionTower(config.vision_config, llm_hidden, config.vision_feature_layer)
        self.pyramid = build_pyramid(config)
        self.perceiver = FineGrainedVisualPerceiver(
            in_channels=self.pyramid.channels,
            num_latents=per.num_latents,
            dim=per.hidden_size,
            num_layers=per.num_layers,
            num_heads=per.num_heads,
            head_dim=per.head_dim,
            ff_mult=per.ff_mult,
            llm_hidden=llm_hidden,
            pyramid_levels=list(per.pyramid_levels),
            conditional_gate=per.conditional_gate,
        )
        self.mask_queries = nn.Parameter(torch.zeros(dec.num_queries, llm_hidden))  # official: seg_query
        nn.init.normal_(self.mask_queries, std=0.02)
        self.entity_recognition = HybridEntityRecognition(llm_hidden, dec.hidden_dim)
        self.pixel_decoder = PixelDecoder.from_config(dec, self.pyramid.channels)
        self.mask_decoder = MaskDecoder(
            hidden_dim=dec.hidden_dim,
            num_queries=dec.num_queries,
            num_heads=dec.num_heads,
            dim_feedforward=dec.dim_feedforward,
            num_layers=dec.num_layers,
            mask_dim=dec.mask_dim,
            mask_shape_embedding=getattr(dec, "mask_shape_embedding", False),
            seg_concat=getattr(dec, "seg_concat", False),
            mask_pooled_dim=self.mask_pooled_dim() if getattr(dec, "mask_pooled_scores", False) else 0,
            mask_pooled_source=getattr(dec, "mask_pooled_features", "pixel_decoder"),
            attribute_groups={
                group: (getattr(dec, f"{group}_attributes", 0), self.attribute_dim(group), self.attribute_source(group))
                for group in ATTRIBUTE_GROUPS
                if getattr(dec, f"{group}_attributes", 0)
            },
            attribute_text_dim=llm_hidden,
            colour_relation=getattr(dec, "colour_relation", False),
            category_ranking=getattr(dec, "category_ranking", False),
            plurality=getattr(dec, "plurality", False),
        )
        # not in the release: the region prompts' fine features (config.region_fine_features), added to what the
        # global tower pools; its last layer starts at zero
        self.region_fine = self._new_region_fine() if config.region_fine_features else None
        self.criterion = self.build_criterion()
        self._no_split_modules = list(
            dict.fromkeys(
                list(getattr(self.llm, "_no_split_modules", None) or [])
                + [
                    "GlobalVisionTower",
                    "PyramidBackbone",
                    "TwoStreamPyramid",
                    "FineGrainedVisualPerceiver",
                    "PixelDecoder",
                    "MaskDecoder",
                ]
            )
        )
        self.post_init()

    # ------------------------------------------------------------------ helpers
    def build_criterion(self) -> HyperSegCriterion:
        """The training losses and matcher from the config's ``loss_*`` weights (rebuilt when a run changes them)."""
        config = self.config
        return HyperSegCriterion(
            matcher=HungarianMatcher(
                cost_class=config.loss_class_weight,
                cost_mask=config.loss_mask_bce_weight,
                cost_dice=config.loss_dice_weight,
                num_points=config.loss_num_points,
            ),
            class_weight=config.loss_class_weight,
            mask_weight=config.loss_mask_bce_weight,
            dice_weight=config.loss_dice_weight,
            instance_weight=config.loss_instance_weight,
            num_points=config.loss_num_points,
            eos_coef=config.no_object_weight,
            presence_weight=config.loss_presence_weight,
            presence_query=config.loss_presence_query,
        )

    @property
    def num_queries(self) -> int:
        return self.config.decoder_config.num_queries

    def get_input_embeddings(self) -> nn.Module:
        return self.llm.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.llm.set_input_embeddings(value)

    def _llm_body(self) -> nn.Module:
        return self.llm.base_model if hasattr(self.llm, "base_model") else self.llm.model

    def pooled_dim(self, source: str) -> int:
        """Channels of the features a mask-pooled module averages (one of ``POOLED_SOURCES``)."""
        if source == "pyramid":
            return sum(self.pyramid.channels[:2])
        if source == "pixel_decoder":
            return self.config.decoder_config.mask_dim
        if source == "shape_stream":
            if not hasattr(self.pyramid, "shape_channels"):
                raise ValueError("'shape_stream' features need a two-stream pyramid (config.pyramid_colour_config)")
            return sum(self.pyramid.shape_channels)
        raise ValueError(f"mask-pooled features must be one of {POOLED_SOURCES}, got {source!r}")

    def mask_pooled_dim(self) -> int:
        """Channels of what the mask-pooled scores average (``decoder_config.mask_pooled_features``)."""
        return self.pooled_dim(getattr(self.config.decoder_config, "mask_pooled_features", "pixel_decoder"))

    def attribute_source(self, group: str) -> str:
        """What the ``group`` attribute scores' mask head averages (``decoder_config.<group>_attribute_features``)."""
        return getattr(self.config.decoder_config, f"{group}_attribute_features")

    def attribute_dim(self, group: str) -> int:
        """Channels of what the ``group`` ("colour" / "category") attribute scores average."""
        return self.pooled_dim(self.attribute_source(group))

    def enable_attribute_scores(self, group: str, num_values: int, source: str) -> None:
        """Turn the ``group`` attribute scores on over ``source``'s features, or move trained ones there (text head
        kept, mask head fresh), with the config in step. ValueError, before anything changes, when the model has no
        such features."""
        width = self.pooled_dim(source)
        setattr(self.config.decoder_config, f"{group}_attributes", num_values)
        setattr(self.config.decoder_config, f"{group}_attribute_features", source)
        self.mask_decoder.enable_attributes(group, width, num_values, self.config.text_config.hidden_size, source)

    def _pooled_features(self, pyramid: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """What the mask-pooled modules that are on read besides the pixel decoder, at stride 4: "pyramid", the
        stride-4 stage and the stride-8 stage upsampled to it; "shape_stream", a two-stream pyramid's shape channels
        of all four stages, upsampled to stride 4 (what stage 1 names each object's shape from; that stream learns
        from images whose colours say nothing of the category)."""
        sources = self.mask_decoder.pooled_sources()
        out = {}
        if "pyramid" in sources:
            out["pyramid"] = upsampled_concat(pyramid[:2])
        if "shape_stream" in sources:
            out["shape_stream"] = upsampled_concat(first_channels(pyramid, self.pyramid.shape_channels))
        return {source: t.to(self._vision_dtype()) for source, t in out.items()}

    def _vision_dtype(self) -> torch.dtype:
        return self.pixel_decoder.mask_features.weight.dtype

    # ------------------------------------------------------------------ stage 1: pixels
    def encode_images(
        self,
        pixel_values: torch.Tensor,
        global_pixel_values: torch.Tensor,
        temporal_state: TemporalState | None = None,
        return_attention: bool = False,
    ) -> ImageFeatures:
        """(B, 3, S, S) pyramid input and (B, 3, G, G) global input -> :class:`ImageFeatures`."""
        pyramid = self.pyramid(pixel_values)
        mask_features, multi_scale = self.pixel_decoder([f.to(self._vision_dtype()) for f in pyramid])
        latents = None
        if temporal_state is not None and temporal_state.latents is not None and self.config.local_space_time_injection:
            latents = temporal_state.latents
        fvp_tokens, attention = self.perceiver(pyramid, latents, return_attention=return_attention)
        global_tokens = self.global_vision(global_pixel_values)
        pooled = self._pooled_features(pyramid)
        return ImageFeatures(mask_features, list(multi_scale), global_tokens, fvp_tokens, attention, pooled)

    def enable_region_fine_features(self) -> None:
        """Add the region prompts' fine features to trained weights (kept if already there); its last layer
        starts at zero, so no output changes until it is trained."""
        self.config.region_fine_features = True
        if self.region_fine is None:
            queries = self.mask_queries
            self.region_fine = self._new_region_fine().to(device=queries.device, dtype=queries.dtype)

    def _new_region_fine(self) -> MaskPooledFeatures:
        """The projection of a region's averaged ``mask_features`` to the LLM's width."""
        return MaskPooledFeatures(self.config.decoder_config.mask_dim, self.config.text_config.hidden_size)

    def pool_region_prompts(
        self, image_features: ImageFeatures, region_masks: Sequence[torch.Tensor] | None, mode: str = "area"
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Per-sample (R_b, H, W) bool masks -> pooled global features (B, R, H) padded + validity (B, R).

        With ``config.region_fine_features`` each region also averages the pixel decoder's ``mask_features``
        (stride 4) inside it, projected to the LLM's width and added."""
        if region_masks is None or all(m is None or m.shape[0] == 0 for m in region_masks):
            return None, None
        if len(region_masks) != image_features.batch_size:
            raise ValueError("give one (possibly empty) stack of region masks per prompt")
        pooled = [
            self._pool_region(tokens, fine, masks, mode)
            if masks is not None and masks.shape[0]
            else tokens.new_zeros((0, tokens.shape[-1]))
            for tokens, fine, masks in zip(image_features.global_tokens, image_features.mask_features, region_masks)
        ]
        num = max(p.shape[0] for p in pooled)
        width = image_features.global_tokens.shape[-1]
        out = image_features.global_tokens.new_zeros((len(pooled), num, width))
        valid = torch.zeros((len(pooled), num), dtype=torch.bool, device=out.device)
        for row, p in enumerate(pooled):
            out[row, : p.shape[0]] = p
            valid[row, : p.shape[0]] = True
        return out, valid

    def _pool_region(self, tokens: torch.Tensor, fine: torch.Tensor, masks: torch.Tensor, mode: str) -> torch.Tensor:
        """One image's (N, H) global tokens, (C, h, w) mask features and (R, H', W') masks -> (R, H)."""
        pooled = pool_regions(tokens, masks, mode=mode)
        if self.region_fine is None:
            return pooled
        fine_pooled = pool_regions(fine.flatten(1).transpose(0, 1), masks, mode=mode)
        return pooled + self.region_fine.project(fine_pooled).to(pooled.dtype)

    # ------------------------------------------------------------------ stage 2: prompts
    def run_llm(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        image_features: ImageFeatures,
        region_masks: Sequence[torch.Tensor] | None = None,
        region_pooling: str = "area",
        region_features: tuple[torch.Tensor, torch.Tensor] | None = None,
        layout: PromptLayout | None = None,
        prefix_reuse: PrefixReuse | None = None,
    ) -> torch.Tensor:
        """One LLM pass with all placeholders filled -> last hidden states (B, L, H).

        ``region_features`` (pooled features, validity) overrides pooling ``region_masks`` on these images:
        video object segmentation pools the first frame's prompts once and reuses them on every frame.
        ``layout`` (:meth:`PromptLayout.of` on the CPU ids) keeps the pass free of device syncs.
        ``prefix_reuse`` (inference, :mod:`.prefix_cache`): a plan made on these prompts' CPU ids about this image
        (:meth:`PrefixCache.plan`); the pass takes its first ``length`` positions from the image's cache and runs the
        LLM on the rest only, then keeps its first row in the cache for the next prompt. The hidden states returned
        are the same either way.
        """
        layout = layout if layout is not None else PromptLayout.of(input_ids)
        if region_features is not None:
            regions = region_features[0]
        else:
            if region_masks is not None and len(region_masks) == layout.batch_size:
                given = tuple(0 if m is None else m.shape[0] for m in region_masks)
                if given != layout.region_positions:
                    raise ValueError(
                        f"the prompts hold {list(layout.region_positions)} region positions per row "
                        f"but {list(given)} region masks were given"
                    )
            regions, _ = self.pool_region_prompts(image_features, region_masks, region_pooling)
        if prefix_reuse is not None and prefix_reuse.length:
            return self._run_llm_after_prefix(input_ids, attention_mask, regions, layout, prefix_reuse)
        embeds = assemble_inputs_embeds(
            self.get_input_embeddings(),
            input_ids,
            image_features.global_tokens,
            image_features.fvp_tokens,
            self.mask_queries,
            regions,
            layout,
        )
        # transformers' eager causal-mask builder asks the device once whether the mask is all ones (it skips
        # that under torch.compile and CUDA-graph capture); nothing else in this pass reads the device
        out = self._llm_body()(
            inputs_embeds=embeds,
            attention_mask=attention_mask,
            position_ids=position_ids_from_mask(attention_mask),
            use_cache=prefix_reuse is not None,
        )
        if prefix_reuse is not None:
            prefix_reuse.keep(out.cache, out.last_hidden_state)
        return out.last_hidden_state

    def _run_llm_after_prefix(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        regions: torch.Tensor | None,
        layout: PromptLayout,
        prefix_reuse: PrefixReuse,
    ) -> torch.Tensor:
        """:meth:`run_llm` after the plan's ``length`` reused positions; its hidden states complete the rows."""
        n, batch = prefix_reuse.length, input_ids.shape[0]
        image_count, fvp_count = prefix_reuse.global_tokens.shape[1], prefix_reuse.fvp_tokens.shape[1]
        if any(c != image_count for c in layout.image_positions) or any(c != fvp_count for c in layout.fvp_positions):
            raise ValueError("a prefix cache serves only prompts about its own image")
        # the positions after the reused ones hold no image / FVP placeholder (plan() checked): nothing to fill there
        suffix_layout = replace(layout, image_positions=(0,) * batch, fvp_positions=(0,) * batch)
        global_tokens, fvp_tokens = prefix_reuse.global_tokens, prefix_reuse.fvp_tokens
        embeds = assemble_inputs_embeds(
            self.get_input_embeddings(),
            input_ids[:, n:],
            global_tokens.new_zeros((batch, 0, global_tokens.shape[-1])),
            fvp_tokens.new_zeros((batch, 0, fvp_tokens.shape[-1])),
            self.mask_queries,
            regions,
            suffix_layout,
        )
        out = self._llm_body()(
            inputs_embeds=embeds,
            attention_mask=attention_mask,
            position_ids=position_ids_from_mask(attention_mask)[:, n:],
            cache=prefix_reuse.as_cache(batch),
            use_cache=True,
        )
        reused = prefix_reuse.reused_hidden(batch).to(out.last_hidden_state.dtype)
        hidden = torch.cat([reused, out.last_hidden_state], dim=1)
        prefix_reuse.keep(out.cache, hidden)
        return hidden

    def _aggregate(self, prompts: PromptEmbeddings, state: TemporalState | None) -> tuple[PromptEmbeddings, dict]:
        enabled = self.config.global_prompt_aggregation
        previous = state.prompt_sums if state is not None else {}
        frames = state.num_frames if state is not None else 0
        sums = {}
        prompts.refer, sums["refer"] = aggregate_prompts(previous.get("refer"), frames, prompts.refer, enabled)
        prompts.classes, sums["class"] = aggregate_prompts(previous.get("class"), frames, prompts.classes, enabled)
        prompts.regions, sums["region"] = aggregate_prompts(previous.get("region"), frames, prompts.regions, enabled)
        return prompts, sums

    @staticmethod
    def _unify(
        refer: torch.Tensor | None,
        classes: torch.Tensor | None,
        regions: torch.Tensor | None,
        prompts: PromptEmbeddings,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample logits of its own prompt kind, padded to a common K.

        A row's kind is the one kind it has valid prompts of (the layout checked there is exactly one); the
        choice is made on the device, from the validity masks, so mixed batches need no host round trip.
        """
        pieces = {
            "refer": (refer, prompts.refer_valid.unsqueeze(1)),
            "class": (classes, prompts.class_valid),
            "region": (regions, prompts.region_valid),
        }
        width = max((v.shape[1] for logit, v in pieces.values() if logit is not None), default=1)
        template = next(logit for logit, _ in pieces.values() if logit is not None)
        batch, queries = template.shape[:2]
        logits = template.new_zeros((batch, queries, width))
        valid = torch.zeros((batch, width), dtype=torch.bool, device=template.device)
        for logit, kind_valid in pieces.values():
            if logit is None:
                continue
            rows = kind_valid.any(dim=1)
            padded = F.pad(logit, (0, width - logit.shape[-1]))
            padded_valid = F.pad(kind_valid, (0, width - kind_valid.shape[-1]))
            logits = torch.where(rows[:, None, None], padded.to(logits.dtype), logits)
            valid = torch.where(rows[:, None], padded_valid, valid)
        return logits, valid

    def segment(
        self,
        image_features: ImageFeatures,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        class_spans: torch.Tensor | None = None,
        refer_mask: torch.Tensor | None = None,
        region_masks: Sequence[torch.Tensor] | None = None,
        temporal_state: TemporalState | None = None,
        region_pooling: str = "area",
        return_intermediate_masks: bool = False,
        region_features: tuple[torch.Tensor, torch.Tensor] | None = None,
        layout: PromptLayout | None = None,
        aux_scores: bool = True,
        prefix_reuse: PrefixReuse | None = None,
    ) -> tuple[HyperSegOutput, torch.Tensor]:
        """Prompts over already-encoded images (row i of the prompts uses row i of ``image_features``).

        Pass ``layout=PromptLayout.of(...)`` built from the CPU tensors (as the pipeline does) and no code of
        ours in here waits for the device (transformers' mask builder still checks once in eager mode); left out,
        it is read from the (device) prompt tensors, one host copy each. ``aux_scores=False`` (inference: the
        pipeline) leaves out the earlier decoder layers' scores, which only the auxiliary losses read, and
        returns no ``aux_outputs``; masks and final scores are the same. ``prefix_reuse``: see :meth:`run_llm`.
        """
        if input_ids.shape[0] != image_features.batch_size:
            raise ValueError("one prompt per image row: use ImageFeatures.select to repeat an image")
        layout = layout if layout is not None else PromptLayout.of(input_ids, class_spans, refer_mask)
        kinds = layout.kinds()
        hidden = self.run_llm(
            input_ids,
            attention_mask,
            image_features,
            region_masks,
            region_pooling,
            region_features,
            layout,
            prefix_reuse,
        )
        prompts = self.entity_recognition(hidden, input_ids, class_spans, refer_mask, self.num_queries, layout)
        prompts, sums = self._aggregate(prompts, temporal_state)
        use = {kind: any(k == kind for k in kinds) for kind in PROMPT_KINDS}
        refer_attributes = {}
        if use["refer"] and refer_mask is not None:  # what each expression states, per attribute group
            refer_attributes = {
                group: heads.text_logits(hidden, refer_mask)
                for group, heads in self.mask_decoder.attribute_scores().items()
            }
            if self.mask_decoder.colour_relation is not None:
                refer_attributes[RELATION_GROUP] = self.mask_decoder.colour_relation.text_logits(hidden, refer_mask)
            if self.mask_decoder.category_ranking is not None:
                refer_attributes[RANKING_GROUP] = self.mask_decoder.category_ranking.text_logits(hidden, refer_mask)
            if self.mask_decoder.plurality is not None:
                refer_attributes[PLURALITY_GROUP] = self.mask_decoder.plurality.text_logits(hidden, refer_mask)
        decoded = self.mask_decoder(
            image_features.multi_scale_features,
            image_features.mask_features,
            prompts.mask_queries,
            refer_embeddings=prompts.refer if use["refer"] else None,
            class_embeddings=prompts.classes if use["class"] else None,
            region_embeddings=prompts.regions if use["region"] else None,
            return_intermediate_masks=return_intermediate_masks,
            score_every_layer=aux_scores,
            pooled_features=image_features.pooled_features,
            refer_attribute_logits=refer_attributes,
        )
        logits, valid = self._unify(decoded.refer_logits, decoded.class_logits, decoded.region_logits, prompts)
        aux = []
        for layer in (decoded.aux_outputs or []) if aux_scores else []:
            aux_logits, _ = self._unify(
                layer.get("refer_logits"), layer.get("class_logits"), layer.get("region_logits"), prompts
            )
            aux.append({"pred_masks": layer["pred_masks"], "prompt_logits": aux_logits})

        next_latents = None
        if self.config.local_space_time_injection:
            fvp_hidden = gather_fixed(hidden, input_ids, TEMPORAL_TOKEN_INDEX, self.config.perceiver_config.num_latents)
            next_latents = self.perceiver.from_llm(fvp_hidden.to(self.perceiver.from_llm.weight.dtype))
        frames = (temporal_state.num_frames if temporal_state is not None else 0) + 1
        state = TemporalState(latents=next_latents, prompt_sums=sums, num_frames=frames)
        output = HyperSegOutput(
            pred_masks=decoded.pred_masks,
            prompt_logits=logits,
            prompt_valid=valid,
            prompt_kind=kinds,
            instance_embeddings=decoded.instance_embeddings,
            query_states=decoded.query_states,
            attribute_logits=decoded.attribute_logits,
            refer_attribute_logits=refer_attributes,
            temporal_state=state,
            aux_outputs=aux,
            intermediate_masks=decoded.intermediate_masks,
            perceiver_attention=image_features.perceiver_attention or None,
        )
        return output, hidden

    # ------------------------------------------------------------------ training forward
    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        pixel_values: torch.Tensor,
        global_pixel_values: torch.Tensor,
        class_spans: torch.Tensor | None = None,
        refer_mask: torch.Tensor | None = None,
        region_masks: Sequence[torch.Tensor] | None = None,
        labels: torch.Tensor | None = None,
        targets: Sequence[SegmentationTarget] | None = None,
        temporal_state: TemporalState | None = None,
        region_pooling: str = "area",
        return_intermediate_masks: bool = False,
        return_attention: bool = False,
    ) -> HyperSegOutput:
        features = self.encode_images(pixel_values, global_pixel_values, temporal_state, return_attention)
        layout = PromptLayout.of(input_ids, class_spans, refer_mask)  # once, for either path
        if not any(layout.query_positions):
            # no mask queries: a text-only prompt (naming what the image holds, LLMFormer-style), LLM and text loss
            output, hidden = HyperSegOutput(), self.run_llm(input_ids, attention_mask, features, layout=layout)
        else:
            output, hidden = self.segment(
                features,
                input_ids,
                attention_mask,
                class_spans,
                refer_mask,
                region_masks,
                temporal_state,
                region_pooling,
                return_intermediate_masks,
                layout=layout,
            )
        losses: dict[str, torch.Tensor] = {}
        if labels is not None:
            text_loss, text_logits = self.text_loss(hidden, labels)
            output.text_logits = text_logits
            if text_loss is not None:
                losses["loss_text"] = text_loss * self.config.loss_text_weight
        if targets is not None and output.pred_masks is not None:
            if len(targets) != input_ids.shape[0]:
                raise ValueError("give one SegmentationTarget per prompt")
            seg_losses, indices = self.criterion(
                output.pred_masks,
                output.prompt_logits,
                output.prompt_valid,
                list(targets),
                aux_outputs=[(a["pred_masks"], a["prompt_logits"]) for a in output.aux_outputs],
            )
            losses.update(seg_losses)
            output.matched_indices = indices
        if losses:
            output.loss_dict = losses
            output.loss = sum(losses.values())
        return output

    def text_loss(self, hidden: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Next-token cross-entropy, computing logits only where there is a label (saves a B x L x V tensor)."""
        shift_labels = labels[:, 1:]
        supervised = shift_labels != IGNORE_INDEX
        if not supervised.any():
            return None, None
        states = hidden[:, :-1][supervised]
        logits = self.llm.lm_head(states.to(self.llm.lm_head.weight.dtype))
        return F.cross_entropy(logits.float(), shift_labels[supervised]), logits

    def instance_association_loss(
        self,
        previous: HyperSegOutput,
        current: HyperSegOutput,
        previous_targets: Sequence[SegmentationTarget],
        current_targets: Sequence[SegmentationTarget],
    ) -> torch.Tensor:
        """Contrastive instance loss (L_ins) between two frames, on the queries matched to each instance."""
        total = current.instance_embeddings.sum() * 0
        for row in range(current.instance_embeddings.shape[0]):
            q_prev, t_prev = previous.matched_indices[row]
            q_cur, t_cur = current.matched_indices[row]
            ids_prev, ids_cur = previous_targets[row].instance_ids, current_targets[row].instance_ids
            if ids_prev is None or ids_cur is None or q_prev.numel() == 0 or q_cur.numel() == 0:
                continue
            total = total + instance_contrastive_loss(
                previous.instance_embeddings[row, q_prev],
                ids_prev[t_prev].to(q_prev.device),
                current.instance_embeddings[row, q_cur],
                ids_cur[t_cur].to(q_cur.device),
            )
        return total * self.config.loss_instance_weight

    # ------------------------------------------------------------------ text generation
    @torch.no_grad()
    def generate_text(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        image_features: ImageFeatures,
        max_new_tokens: int = 64,
        eos_token_id: int | None = None,
        pad_token_id: int | None = None,
        region_masks: Sequence[torch.Tensor] | None = None,
        vocabulary_size: int | None = None,
        samples: int = 0,
        bad_words_ids: list[list[int]] | None = None,
    ) -> torch.Tensor:
        """Greedy answer text (names of what is seen, explanations); prompts must be left padded.

        ``samples`` > 0: that many answers per prompt sampled instead (temperature 1, top 50 tokens), rows
        ``i * samples`` to ``(i + 1) * samples - 1`` answering prompt ``i``; they draw on torch's random state.

        ``bad_words_ids``: token sequences never to generate (transformers' ``bad_words_ids``).

        ``vocabulary_size`` (the tokenizer's length) keeps generation inside the real vocabulary: the embedding
        rows beyond it exist only as padding. A documented difference: the release keeps its 51,200-row ``lm_head``
        and suppresses nothing (docs/converter.md, "Vocabulary at generation")."""
        regions, _ = self.pool_region_prompts(image_features, region_masks)
        embeds = assemble_inputs_embeds(
            self.get_input_embeddings(),
            input_ids,
            image_features.global_tokens,
            image_features.fvp_tokens,
            self.mask_queries,
            regions,
            PromptLayout.of(input_ids),
        )
        rows = self.llm.lm_head.weight.shape[0]
        suppress = list(range(vocabulary_size, rows)) if vocabulary_size and vocabulary_size < rows else None
        sampling = {"do_sample": False}
        if samples:
            sampling = {"do_sample": True, "temperature": 1.0, "top_k": 50, "num_return_sequences": samples}
        return self.llm.generate(
            inputs_embeds=embeds,
            attention_mask=attention_mask,
            max_new_tokens=max_new_tokens,
            **sampling,
            eos_token_id=eos_token_id,
            pad_token_id=pad_token_id,
            suppress_tokens=suppress,
            bad_words_ids=bad_words_ids or None,
        )
