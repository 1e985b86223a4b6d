"""Segmentation predictor (paper Eq. 3): Mask2Former's masked-attention decoder, queried by the LLM's mask tokens.

This is the release's ``MultiScaleMaskedTransformerDecoderForOPTPreTrain`` in its ``forward_woconcat`` path
(``seg_concat=False``, ``seg_norm=False``, ``seg_proj=True``, ``seg_fuse_score=False``, post-norm, dropout 0).
The LLM-produced mask queries (already projected to ``hidden_dim``) are the decoder's content queries; a
learned ``query_embed`` is their positional part. Each layer cross-attends to one of three scales (round
robin, lowest resolution first), masked to the pixels the query currently predicts as foreground, then
self-attends and runs an FFN. Before the first layer and after every layer the heads predict:

* masks: ``mask_embed(q) . mask_features``;
* prompt scores, dot products of projected decoder outputs with the projected prompt embeddings - no fixed
  classifier, so any class name works: ``SEG_proj`` vs the referring/[SEG] embedding, ``CLASS_proj`` vs
  class-name embeddings, ``REGION_proj`` vs visual-prompt (region) embeddings;
* boxes (``box_embed``, sigmoid cxcywh) on request.

``seg_concat=True`` is the release's other path (``forward_concat``, PSALM's): before every layer the referring
embedding is put in front of the mask queries, attends to all pixels (no mask) and with the queries, and
comes out as the referring embedding the next scores read; positions come from ``SEG_query_embed`` (Q + 1 rows).
One deviation: after each layer the release takes ``output[0]`` *after* dropping the referring row, i.e. the
first mask query's state, as the next referring embedding; we take the referring row's own state, what the
path means to do. Class and region prompts are unchanged in this path, as in the release.

Kept only so the checkpoint loads 1:1 by name (``predictor.*``), never read in the default path:
``SEG_query_embed`` (the concat path's positions), ``query_feat`` (the release's woconcat path would use a
non-existent ``new_query_feat`` without LLM queries; HyperSeg always passes them) and ``iou_head`` (box IoU,
never enabled at inference). ``reid_embed_head`` is likewise never called by the release, which only returns
the raw last-layer states (``hs``) for video; we apply it to the normalised last-layer states to get
``instance_embeddings`` for associating objects across frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .attribute_scores import ATTRIBUTE_GROUPS, AttributeScores
from .mask_pooling import MaskPooledFeatures, masked_mean
from .mask_shape import MaskShapeEncoder
from .mlp import MLP
from .plurality_scores import PluralityHead
from .position_encoding import sine_position_embedding
from .ranking_scores import RANKING_GROUP, CategoryRankingScores
from .relation_scores import RELATION_GROUP, ColourRelationScores


def _xavier_matrices(module: nn.Module) -> None:
    """The release's ``_reset_parameters`` of each decoder layer: xavier-uniform on every weight matrix."""
    for p in module.parameters():
        if p.dim() > 1:
            nn.init.xavier_uniform_(p)


class SelfAttentionLayer(nn.Module):
    """Post-norm self-attention among queries; positions added to queries and keys only."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, num_heads, dropout=0.0)
        self.norm = nn.LayerNorm(dim)
        _xavier_matrices(self)

    def forward(self, tgt: torch.Tensor, query_pos: torch.Tensor) -> torch.Tensor:
        q = k = tgt + query_pos
        return self.norm(tgt + self.self_attn(q, k, value=tgt, need_weights=False)[0])


class CrossAttentionLayer(nn.Module):
    """Post-norm masked cross-attention from queries to one feature level."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.multihead_attn = nn.MultiheadAttention(dim, num_heads, dropout=0.0)
        self.norm = nn.LayerNorm(dim)
        _xavier_matrices(self)

    def forward(
        self,
        tgt: torch.Tensor,
        memory: torch.Tensor,
        memory_mask: torch.Tensor,
        pos: torch.Tensor,
        query_pos: torch.Tensor,
    ) -> torch.Tensor:
        out = self.multihead_attn(
            query=tgt + query_pos, key=memory + pos, value=memory, attn_mask=memory_mask, need_weights=False
        )[0]
        return self.norm(tgt + out)


class FFNLayer(nn.Module):
    def __init__(self, dim: int, dim_feedforward: int) -> None:
        super().__init__()
        self.linear1 = nn.Linear(dim, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, dim)
        self.norm = nn.LayerNorm(dim)
        _xavier_matrices(self)

    def forward(self, tgt: torch.Tensor) -> torch.Tensor:
        return self.norm(tgt + self.linear2(F.relu(self.linear1(tgt))))


@dataclass
class MaskDecoderOutput:
    """Last-layer predictions, plus every earlier prediction for deep supervision.

    Logit tensors are None when the matching prompt embeddings were not given. Padded prompt rows (K or R)
    get logits too; the caller masks them.
    """

    pred_masks: torch.Tensor  # (B, Q, H/4, W/4) mask logits
    refer_logits: torch.Tensor | None  # (B, Q, 1): SEG_proj(q) . referring embedding
    class_logits: torch.Tensor | None  # (B, Q, K): CLASS_proj(q) . class-name embeddings
    region_logits: torch.Tensor | None  # (B, Q, R): REGION_proj(q) . region embeddings (release: (R, Q) per sample)
    instance_embeddings: torch.Tensor  # (B, Q, C): reid_embed_head(query_states)
    query_states: torch.Tensor  # (B, Q, C): decoder_norm of the last layer's output
    pred_boxes: torch.Tensor | None = None  # (B, Q, 4) sigmoid cxcywh, when predict_boxes
    # predictions 0..num_layers-1 (all but the last): pred_masks/refer_logits/class_logits/region_logits
    # (+ pred_boxes when predict_boxes)
    aux_outputs: list[dict[str, torch.Tensor | None]] = field(default_factory=list)
    intermediate_masks: list[torch.Tensor] | None = None  # all num_layers + 1 mask predictions, on request
    # attribute scores (groups that are on, when a prompt is scored): each token's value per group, (B, Q, K)
    attribute_logits: dict[str, torch.Tensor] = field(default_factory=dict)


class _Prediction(NamedTuple):
    states: torch.Tensor  # (B, Q, C) normalised
    masks: torch.Tensor
    refer_logits: torch.Tensor | None
    class_logits: torch.Tensor | None
    region_logits: torch.Tensor | None
    attn_mask: torch.Tensor | None  # (B * heads, Q, H_l * W_l), True = may not attend
    attribute_logits: dict[str, torch.Tensor] | None = None  # group -> (B, Q, K) each token's value


class MaskDecoder(nn.Module):
    def __init__(
        self,
        hidden_dim: int = 256,
        num_queries: int = 100,
        num_heads: int = 8,
        dim_feedforward: int = 2048,
        num_layers: int = 9,
        mask_dim: int = 256,
        num_feature_levels: int = 3,
        mask_shape_embedding: bool = False,
        seg_concat: bool = False,
        mask_pooled_dim: int = 0,
        mask_pooled_source: str = "pixel_decoder",
        attribute_groups: dict[str, tuple[int, int, str]] | None = None,
        attribute_text_dim: int = 0,
        colour_relation: bool = False,
        category_ranking: bool = False,
        plurality: bool = False,
    ) -> None:
        """``mask_pooled_dim``: channels of the mask-pooled scores' features (0: off); ``attribute_groups``: the
        attribute scores that are on, name ("colour" / "category") -> (number of values, channels of the features
        their mask head averages, their source), over the LLM's ``attribute_text_dim``-wide hidden states (the
        decoder width when 0). Each source: "pixel_decoder" (``mask_features``), or "pyramid" / "shape_stream"
        (``pooled_features`` given to :meth:`forward`). ``colour_relation``: the colour relation scores (needs both
        groups); ``category_ranking``: the category ranking scores (needs the category group); ``plurality``: the text
        head that reads whether an expression names several objects (read by the pipeline alone)."""
        super().__init__()
        self.seg_concat = seg_concat
        self.hidden_dim = hidden_dim
        self.mask_dim = mask_dim
        self.num_queries = num_queries
        self.num_heads = num_heads
        self.num_layers = num_layers
        self.num_feature_levels = num_feature_levels
        self.transformer_self_attention_layers = nn.ModuleList(
            SelfAttentionLayer(hidden_dim, num_heads) for _ in range(num_layers)
        )
        self.transformer_cross_attention_layers = nn.ModuleList(
            CrossAttentionLayer(hidden_dim, num_heads) for _ in range(num_layers)
        )
        self.transformer_ffn_layers = nn.ModuleList(FFNLayer(hidden_dim, dim_feedforward) for _ in range(num_layers))
        self.decoder_norm = nn.LayerNorm(hidden_dim)
        self.query_feat = nn.Embedding(num_queries, hidden_dim)  # unused here (checkpoint compatibility)
        self.query_embed = nn.Embedding(num_queries, hidden_dim)  # positional part of the queries
        self.SEG_query_embed = nn.Embedding(num_queries + 1, hidden_dim)  # positions of the concat path
        self.level_embed = nn.Embedding(num_feature_levels, hidden_dim)
        # input_proj is the identity (features already have hidden_dim channels): no parameters
        self.mask_embed = MLP(hidden_dim, hidden_dim, mask_dim, 3)
        self.box_embed = MLP(hidden_dim, hidden_dim, 4, 3)
        self.iou_head = nn.Linear(hidden_dim, 1)  # unused here (checkpoint compatibility)
        self.reid_embed_head = MLP(hidden_dim, hidden_dim, hidden_dim, 3)
        self.SEG_proj = MLP(hidden_dim, hidden_dim, hidden_dim, 2)
        self.CLASS_proj = MLP(hidden_dim, hidden_dim, hidden_dim, 2)
        self.REGION_proj = MLP(hidden_dim, hidden_dim, hidden_dim, 2)
        # not in the release: the scores also see the shape of the token's own mask (mask_shape.py)
        self.mask_shape = MaskShapeEncoder(hidden_dim) if mask_shape_embedding else None
        # not in the release: the scores also read the pixel features under the token's own mask (mask_pooling.py)
        self.mask_pooled = MaskPooledFeatures(mask_pooled_dim, hidden_dim) if mask_pooled_dim else None
        self.mask_pooled_source = mask_pooled_source
        # not in the release: an expression's colour and category words meet each mask's own (attribute_scores.py)
        self.colour_attributes: AttributeScores | None = None
        self.category_attributes: AttributeScores | None = None
        self.attribute_sources: dict[str, str] = {}
        for group, (num_values, in_dim, source) in (attribute_groups or {}).items():
            self.enable_attributes(group, in_dim, num_values, attribute_text_dim or hidden_dim, source)
        # not in the release: "the same colour as the ring" compares the masks' colours (relation_scores.py)
        self.colour_relation: ColourRelationScores | None = None
        if colour_relation:
            self.enable_colour_relation(attribute_text_dim or hidden_dim)
        # not in the release: "the object with the most corners" compares the objects found (ranking_scores.py)
        self.category_ranking: CategoryRankingScores | None = None
        if category_ranking:
            self.enable_category_ranking(attribute_text_dim or hidden_dim)
        # not in the release: "all red objects" names several objects, "the red star" one (plurality_scores.py)
        self.plurality: PluralityHead | None = None
        if plurality:
            self.enable_plurality(attribute_text_dim or hidden_dim)

    def enable_mask_shape(self) -> None:
        """Add the mask-shape embedding to trained weights; it starts at zero, so no output changes until trained."""
        if self.mask_shape is None:
            reference = self.CLASS_proj.layers[0].weight
            self.mask_shape = MaskShapeEncoder(self.hidden_dim).to(device=reference.device, dtype=reference.dtype)

    def pooled_sources(self) -> set[str]:
        """The sources (``mask_pooling.POOLED_SOURCES``) the mask-pooled modules that are on average."""
        sources = {self.mask_pooled_source} if self.mask_pooled is not None else set()
        return sources | {self.attribute_sources[group] for group in self.attribute_scores()}

    def attribute_scores(self) -> dict[str, AttributeScores]:
        """The attribute groups that are on, by name."""
        groups = {group: getattr(self, f"{group}_attributes") for group in ATTRIBUTE_GROUPS}
        return {group: module for group, module in groups.items() if module is not None}

    def enable_mask_pooled_scores(self, in_dim: int, init_std: float = 0.0, source: str = "pixel_decoder") -> None:
        """Add mask-pooled scores over ``in_dim``-channel features to trained weights (kept if already there);
        ``init_std`` 0 changes no output until trained (see :class:`MaskPooledFeatures`)."""
        if self.mask_pooled is None:
            self.mask_pooled_source = source
            reference = self.CLASS_proj.layers[0].weight
            self.mask_pooled = MaskPooledFeatures(in_dim, self.hidden_dim, init_std).to(
                device=reference.device, dtype=reference.dtype
            )

    def enable_attributes(self, group: str, in_dim: int, num_values: int, text_dim: int, source: str) -> None:
        """Add the ``group`` ("colour" or "category") attribute scores over ``in_dim``-channel mask-pooled features
        (kept if already there); they start at "none stated", so the scores hardly change until trained. The
        category group's text head can also say "outside the world". Already there with another ``source``: the
        trained text head is kept and the mask head starts fresh on the new source's features."""
        if group not in ATTRIBUTE_GROUPS:
            raise ValueError(f"attribute groups are {ATTRIBUTE_GROUPS}, got {group!r}")
        existing = getattr(self, f"{group}_attributes")
        if existing is not None and self.attribute_sources[group] != source:
            self.attribute_sources[group] = source
            reference = existing.text_head.weight
            head = AttributeScores.new_mask_head(in_dim, self.hidden_dim, existing.num_values)
            existing.mask_head = head.to(device=reference.device, dtype=reference.dtype)
        elif existing is None:
            self.attribute_sources[group] = source
            reference = self.CLASS_proj.layers[0].weight
            module = AttributeScores(in_dim, self.hidden_dim, num_values, text_dim, outside=group == "category")
            setattr(self, f"{group}_attributes", module.to(device=reference.device, dtype=reference.dtype))

    def enable_colour_relation(self, text_dim: int) -> None:
        """Add the colour relation scores to trained weights (kept if already there); they start at "no
        relation", so no answer changes until their text head is trained."""
        if self.colour_attributes is None or self.category_attributes is None:
            raise ValueError("the colour relation scores need the colour and category attribute scores")
        if self.colour_relation is None:
            reference = self.CLASS_proj.layers[0].weight
            module = ColourRelationScores(text_dim, self.category_attributes.num_values)
            self.colour_relation = module.to(device=reference.device, dtype=reference.dtype)

    def enable_category_ranking(self, text_dim: int) -> None:
        """Add the category ranking scores to trained weights (kept if already there); they start at "no
        ranking", so no answer changes until their text head is trained."""
        if self.category_attributes is None:
            raise ValueError("the category ranking scores need the category attribute scores")
        if self.category_ranking is None:
            reference = self.CLASS_proj.layers[0].weight
            module = CategoryRankingScores(text_dim, self.category_attributes.num_values)
            self.category_ranking = module.to(device=reference.device, dtype=reference.dtype)

    def enable_plurality(self, text_dim: int) -> None:
        """Add the plurality head to trained weights (kept if already there); it starts at "one object", so no
        expression is answered with a union until it is trained."""
        if self.plurality is None:
            reference = self.CLASS_proj.layers[0].weight
            self.plurality = PluralityHead(text_dim).to(device=reference.device, dtype=reference.dtype)

    def enable_seg_concat(self) -> None:
        """Switch trained weights to the concat path: its positions start as the trained queries' (the referring
        row at zero), so the masks change only as far as the referring row's attention does, then train."""
        if self.seg_concat:
            return  # already on (trained positions): keep them
        self.seg_concat = True
        with torch.no_grad():
            self.SEG_query_embed.weight[0].zero_()
            self.SEG_query_embed.weight[1:].copy_(self.query_embed.weight)

    def _predict(
        self,
        output: torch.Tensor,
        mask_features: torch.Tensor,
        attn_size: tuple[int, int] | None,
        refer: torch.Tensor | None,
        classes: torch.Tensor | None,
        regions: torch.Tensor | None,
        pooled_features: dict[str, torch.Tensor] | None = None,
        refer_attribute_logits: dict[str, torch.Tensor] | None = None,
    ) -> _Prediction:
        """The release's ``forward_prediction_heads`` on (Q, B, C) states; attn_size None skips the mask."""
        states = self.decoder_norm(output).transpose(0, 1)  # (B, Q, C)
        mask_embed = self.mask_embed(states)
        masks = torch.einsum("bqc,bchw->bqhw", mask_embed, mask_features)
        scored, attribute_logits, groups = states, {}, self.attribute_scores()
        pooled: dict[str, torch.Tensor] = {}  # each source averaged once under every mask

        def pool(source: str) -> torch.Tensor:
            if source not in pooled:
                features = mask_features if source == "pixel_decoder" else (pooled_features or {}).get(source)
                if features is None:
                    raise ValueError(f"{source!r} features to pool were not given (pooled_features)")
                pooled[source] = masked_mean(masks, features)
            return pooled[source]

        if refer is not None or classes is not None or regions is not None:  # only what a score reads
            if self.mask_shape is not None:
                scored = scored + self.mask_shape(masks).to(states.dtype)
            if self.mask_pooled is not None:
                scored = scored + self.mask_pooled.project(pool(self.mask_pooled_source)).to(states.dtype)
            for group, heads in groups.items():  # every scored task teaches the mask side
                attribute_logits[group] = heads.mask_logits(pool(self.attribute_sources[group]))
        refer_logits = torch.einsum("bqc,bkc->bqk", self.SEG_proj(scored), refer) if refer is not None else None
        if refer is not None and refer_attribute_logits:
            # the heads learn from their own targets only (training/attribute_supervision.py): trained through this
            # product as well, the referring loss pulled the text head to "no colour" (docs/research/embedded-v2.md)
            compatibilities = [
                groups[group].compatibility(attribute_logits[group].detach(), text.detach())
                for group, text in refer_attribute_logits.items()
                if group in groups  # the question heads' text logits are read below, or by the pipeline
            ]
            if compatibilities:
                refer_logits = AttributeScores.combine(refer_logits, sum(compatibilities))
            relation = refer_attribute_logits.get(RELATION_GROUP)
            if relation is not None and self.colour_relation is not None:
                refer_logits = self.colour_relation.combine(
                    refer_logits,
                    masks.detach(),
                    attribute_logits["colour"].detach(),
                    attribute_logits["category"].detach(),
                    relation.detach(),
                    outside=groups["category"]
                    .outside_probability(refer_attribute_logits["category"])[:, None]
                    .detach(),
                )
            ranking = refer_attribute_logits.get(RANKING_GROUP)
            if ranking is not None and self.category_ranking is not None:
                refer_logits = self.category_ranking.combine(
                    refer_logits, masks.detach(), attribute_logits["category"].detach(), ranking.detach()
                )
        class_logits = torch.einsum("bqc,bkc->bqk", self.CLASS_proj(scored), classes) if classes is not None else None
        region_logits = torch.einsum("bqc,brc->bqr", self.REGION_proj(scored), regions) if regions is not None else None
        attn_mask = None
        if attn_size is not None:
            # resized in float, thresholded in the head's dtype, as the release
            attn = F.interpolate(masks.float(), size=attn_size, mode="bilinear", align_corners=False)
            attn = attn.to(mask_embed.dtype).sigmoid().flatten(2) < 0.5  # True = background: may not attend
            attn_mask = attn.unsqueeze(1).expand(-1, self.num_heads, -1, -1).flatten(0, 1).detach()
        return _Prediction(states, masks, refer_logits, class_logits, region_logits, attn_mask, attribute_logits)

    def forward(
        self,
        multi_scale_features: Sequence[torch.Tensor],
        mask_features: torch.Tensor,
        queries: torch.Tensor,
        refer_embeddings: torch.Tensor | None = None,
        class_embeddings: torch.Tensor | None = None,
        region_embeddings: torch.Tensor | None = None,
        predict_boxes: bool = False,
        return_intermediate_masks: bool = False,
        score_every_layer: bool = True,
        pooled_features: dict[str, torch.Tensor] | None = None,
        refer_attribute_logits: dict[str, torch.Tensor] | None = None,
    ) -> MaskDecoderOutput:
        """multi_scale_features: the pixel decoder's 3 maps (B, C, H_l, W_l), lowest resolution first;
        mask_features (B, mask_dim, H/4, W/4); queries (B, Q, C) projected LLM mask queries;
        refer_embeddings (B, 1, C); class_embeddings (B, K, C); region_embeddings (B, R, C), padded.

        ``score_every_layer=False`` scores the prompts after the last layer only (the earlier layers' scores
        feed only the auxiliary losses; their ``aux_outputs`` logits are then None): same masks and final
        scores, less work at inference. ``pooled_features``: per source other than "pixel_decoder", the (B, C, H/4,
        W/4) features the mask-pooled modules of that source average. ``refer_attribute_logits``: per attribute
        group (B, 1, columns) what each expression states (:meth:`AttributeScores.text_logits`), for the attribute
        scores."""
        if len(multi_scale_features) != self.num_feature_levels:
            raise ValueError(f"expected {self.num_feature_levels} feature levels, got {len(multi_scale_features)}")
        batch, num_queries, _ = queries.shape
        if num_queries != self.num_queries:
            raise ValueError(f"expected {self.num_queries} queries (rows of query_embed), got {num_queries}")
        sizes, sources, positions = [], [], []
        for i, x in enumerate(multi_scale_features):
            sizes.append((x.shape[-2], x.shape[-1]))
            positions.append(sine_position_embedding(x, self.hidden_dim // 2).to(x.dtype).flatten(2).permute(2, 0, 1))
            sources.append((x.flatten(2) + self.level_embed.weight[i][None, :, None]).permute(2, 0, 1))  # (HW, B, C)
        concat = self.seg_concat and refer_embeddings is not None
        positions_of = self.SEG_query_embed if concat else self.query_embed
        query_pos = positions_of.weight.unsqueeze(1).repeat(1, batch, 1)  # (Q, B, C), Q + 1 rows when concat
        output = queries.transpose(0, 1)
        unscored = (None, None, None)  # earlier layers' prompts when only the last layer scores

        prompts = (refer_embeddings, class_embeddings, region_embeddings)
        first = prompts if score_every_layer else unscored
        predictions = [self._predict(output, mask_features, sizes[0], *first, pooled_features, refer_attribute_logits)]
        for i in range(self.num_layers):
            level = i % self.num_feature_levels
            attn_mask = predictions[-1].attn_mask
            attn_mask = attn_mask & ~attn_mask.all(dim=-1, keepdim=True)  # an empty mask attends everywhere
            if concat:  # the referring row first, attending everywhere
                output = torch.cat([refer_embeddings.transpose(0, 1).to(output.dtype), output], 0)
                attn_mask = torch.cat([attn_mask.new_zeros(attn_mask.shape[0], 1, attn_mask.shape[-1]), attn_mask], 1)
            output = self.transformer_cross_attention_layers[i](
                output, sources[level], attn_mask, positions[level], query_pos
            )
            output = self.transformer_self_attention_layers[i](output, query_pos)
            output = self.transformer_ffn_layers[i](output)
            if concat:
                refer_embeddings, output = output[:1].transpose(0, 1), output[1:]
                prompts = (refer_embeddings, class_embeddings, region_embeddings)
            last = i == self.num_layers - 1
            next_size = None if last else sizes[(i + 1) % self.num_feature_levels]  # the last mask is never used
            scored = prompts if last or score_every_layer else unscored
            predictions.append(
                self._predict(output, mask_features, next_size, *scored, pooled_features, refer_attribute_logits)
            )

        aux = []
        for p in predictions[:-1]:
            entry = {
                "pred_masks": p.masks,
                "refer_logits": p.refer_logits,
                "class_logits": p.class_logits,
                "region_logits": p.region_logits,
            }
            if predict_boxes:
                entry["pred_boxes"] = self.box_embed(p.states).sigmoid()
            aux.append(entry)
        final = predictions[-1]
        return MaskDecoderOutput(
            pred_masks=final.masks,
            refer_logits=final.refer_logits,
            class_logits=final.class_logits,
            region_logits=final.region_logits,
            instance_embeddings=self.reid_embed_head(final.states),
            query_states=final.states,
            pred_boxes=self.box_embed(final.states).sigmoid() if predict_boxes else None,
            aux_outputs=aux,
            intermediate_masks=[p.masks for p in predictions] if return_intermediate_masks else None,
            attribute_logits=final.attribute_logits or {},
        )
