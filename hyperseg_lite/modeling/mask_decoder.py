"""Segmentation predictor (paper Eq. 3): Mask2Former's masked-attention decoder, queried by the LLM's mask tokens.

The mask tokens from HER replace Mask2Former's learned query features; each layer cross-attends to one of
three scales (masked to the query's current foreground), self-attends, and runs an FFN. After the input
and after every layer, the heads predict:

* masks: ``mask_embed(q) . mask_features``;
* prompt scores: dot products of projected decoder outputs with the prompt embeddings
  (``SEG_proj`` for the referring/reasoning embedding, ``CLASS_proj`` for class names, ``REGION_proj`` for
  visual prompts) - no fixed classifier, so any class name works;
* instance embeddings (``reid_embed_head``) for associating objects across video frames. The release keeps
  this head but never calls it; we apply it to the final normalised decoder output.

This is the release's ``forward_woconcat`` path (``seg_concat=False``, ``seg_proj=True``, no score fusion,
post-norm). ``SEG_query_embed`` is only read by the release's unused concat path; it is kept so the
checkpoint loads by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .mlp import MLP
from .position_encoding import sine_position_embedding


class SelfAttentionLayer(nn.Module):
    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, num_heads, dropout=0.0)
        self.norm = nn.LayerNorm(dim)
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def forward(self, tgt: torch.Tensor, query_pos: torch.Tensor) -> torch.Tensor:
        q = k = tgt + query_pos
        return self.norm(tgt + self.self_attn(q, k, value=tgt, need_weights=False)[0])


class CrossAttentionLayer(nn.Module):
    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.multihead_attn = nn.MultiheadAttention(dim, num_heads, dropout=0.0)
        self.norm = nn.LayerNorm(dim)
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def forward(self, tgt: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor, pos: torch.Tensor,
                query_pos: torch.Tensor) -> torch.Tensor:
        out = self.multihead_attn(query=tgt + query_pos, key=memory + pos, value=memory, attn_mask=memory_mask,
                                  need_weights=False)[0]
        return self.norm(tgt + out)


class FFNLayer(nn.Module):
    def __init__(self, dim: int, dim_feedforward: int) -> None:
        super().__init__()
        self.linear1 = nn.Linear(dim, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, dim)
        self.norm = nn.LayerNorm(dim)
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def forward(self, tgt: torch.Tensor) -> torch.Tensor:
        return self.norm(tgt + self.linear2(F.relu(self.linear1(tgt))))


@dataclass
class MaskDecoderOutput:
    pred_masks: torch.Tensor  # (B, Q, H/4, W/4) logits, last layer
    refer_logits: torch.Tensor | None  # (B, Q, 1)
    class_logits: torch.Tensor | None  # (B, Q, K)
    region_logits: torch.Tensor | None  # (B, Q, R) (the release computes (R, Q) per sample)
    instance_embeddings: torch.Tensor  # (B, Q, C)
    query_states: torch.Tensor  # (B, Q, C) normalised decoder output
    pred_boxes: torch.Tensor | None = None  # (B, Q, 4) cxcywh in [0, 1]
    aux_outputs: list[dict] = field(default_factory=list)  # predictions before the last layer
    intermediate_masks: list[torch.Tensor] | None = None  # all num_layers + 1 mask predictions


class MaskDecoder(nn.Module):
    def __init__(self, hidden_dim: int = 256, num_queries: int = 100, num_heads: int = 8, dim_feedforward: int = 2048,
                 num_layers: int = 9, mask_dim: int = 256, num_feature_levels: int = 3) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.num_layers = num_layers
        self.num_feature_levels = num_feature_levels
        self.hidden_dim = hidden_dim
        self.transformer_self_attention_layers = nn.ModuleList(SelfAttentionLayer(hidden_dim, num_heads)
                                                               for _ in range(num_layers))
        self.transformer_cross_attention_layers = nn.ModuleList(CrossAttentionLayer(hidden_dim, num_heads)
                                                                for _ in range(num_layers))
        self.transformer_ffn_layers = nn.ModuleList(FFNLayer(hidden_dim, dim_feedforward) for _ in range(num_layers))
        self.decoder_norm = nn.LayerNorm(hidden_dim)
        self.query_feat = nn.Embedding(num_queries, hidden_dim)  # used when no LLM queries are given
        self.query_embed = nn.Embedding(num_queries, hidden_dim)  # query positional embedding
        self.SEG_query_embed = nn.Embedding(num_queries + 1, hidden_dim)  # unused (release's concat path)
        self.level_embed = nn.Embedding(num_feature_levels, hidden_dim)
        self.mask_embed = MLP(hidden_dim, hidden_dim, mask_dim, 3)
        self.box_embed = MLP(hidden_dim, hidden_dim, 4, 3)
        self.iou_head = nn.Linear(hidden_dim, 1)
        self.reid_embed_head = MLP(hidden_dim, hidden_dim, hidden_dim, 3)
        self.SEG_proj = MLP(hidden_dim, hidden_dim, hidden_dim, 2)
        self.CLASS_proj = MLP(hidden_dim, hidden_dim, hidden_dim, 2)
        self.REGION_proj = MLP(hidden_dim, hidden_dim, hidden_dim, 2)

    def _heads(self, output: torch.Tensor, mask_features: torch.Tensor, target_size: tuple[int, int],
               refer: torch.Tensor | None, classes: torch.Tensor | None, regions: torch.Tensor | None):
        decoded = self.decoder_norm(output).transpose(0, 1)  # (B, Q, C)
        refer_logits = torch.einsum("bqc,bkc->bqk", self.SEG_proj(decoded), refer) if refer is not None else None
        class_logits = torch.einsum("bqc,bkc->bqk", self.CLASS_proj(decoded), classes) if classes is not None else None
        region_logits = torch.einsum("bqc,bkc->bqk", self.REGION_proj(decoded), regions) if regions is not None else None
        masks = torch.einsum("bqc,bchw->bqhw", self.mask_embed(decoded), mask_features)
        attn = F.interpolate(masks.float(), size=target_size, mode="bilinear", align_corners=False)
        # True = may not attend: pixels the query currently thinks are background
        attn = (attn.sigmoid().flatten(2).unsqueeze(1).repeat(1, self.num_heads, 1, 1).flatten(0, 1) < 0.5).detach()
        return decoded, masks, refer_logits, class_logits, region_logits, attn

    def forward(self, multi_scale_features: list[torch.Tensor], mask_features: torch.Tensor,
                queries: torch.Tensor | None = None, refer_embeddings: torch.Tensor | None = None,
                class_embeddings: torch.Tensor | None = None, region_embeddings: torch.Tensor | None = None,
                predict_boxes: bool = False, return_intermediate_masks: bool = False) -> MaskDecoderOutput:
        if len(multi_scale_features) != self.num_feature_levels:
            raise ValueError(f"expected {self.num_feature_levels} feature levels, got {len(multi_scale_features)}")
        sizes, sources, positions = [], [], []
        for i, x in enumerate(multi_scale_features):
            sizes.append(tuple(x.shape[-2:]))
            positions.append(sine_position_embedding(x, self.hidden_dim // 2).to(x.dtype).flatten(2).permute(2, 0, 1))
            sources.append((x.flatten(2) + self.level_embed.weight[i][None, :, None]).permute(2, 0, 1))
        batch = mask_features.shape[0]
        query_pos = self.query_embed.weight.unsqueeze(1).repeat(1, batch, 1)
        if queries is None:
            output = self.query_feat.weight.unsqueeze(1).repeat(1, batch, 1)
        else:
            output = queries.transpose(0, 1)
        predictions = [self._heads(output, mask_features, sizes[0], refer_embeddings, class_embeddings,
                                   region_embeddings)]
        for i in range(self.num_layers):
            level = i % self.num_feature_levels
            attn_mask = predictions[-1][-1]
            attn_mask = attn_mask & ~attn_mask.all(dim=-1, keepdim=True)  # an empty mask attends everywhere
            output = self.transformer_cross_attention_layers[i](output, sources[level], attn_mask, positions[level],
                                                                query_pos)
            output = self.transformer_self_attention_layers[i](output, query_pos)
            output = self.transformer_ffn_layers[i](output)
            predictions.append(self._heads(output, mask_features, sizes[(i + 1) % self.num_feature_levels],
                                           refer_embeddings, class_embeddings, region_embeddings))
        decoded, masks, refer_logits, class_logits, region_logits, _ = predictions[-1]
        aux = [{"pred_masks": p[1], "refer_logits": p[2], "class_logits": p[3], "region_logits": p[4]}
               for p in predictions[:-1]]
        return MaskDecoderOutput(
            pred_masks=masks, refer_logits=refer_logits, class_logits=class_logits, region_logits=region_logits,
            instance_embeddings=self.reid_embed_head(decoded), query_states=decoded,
            pred_boxes=self.box_embed(decoded).sigmoid() if predict_boxes else None, aux_outputs=aux,
            intermediate_masks=[p[1] for p in predictions] if return_intermediate_masks else None)
