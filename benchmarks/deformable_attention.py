"""What the gather form of deformable sampling saves on CPU, against the release's ``grid_sample`` form.

    python benchmarks/deformable_attention.py --checkpoint assets/hyperseg-lite

Two tables. The op alone (``deformable_sample_grid`` against ``deformable_sample_gather``) at the shapes of the
pixel decoder of the chosen model on a 256-px image, at inference and forward + backward (training); then the
pipeline with the model's deformable attention switched between the two. Both ways are timed alternately, call by
call, in one process, so that a shared machine's drift (30% or more between runs minutes apart here) falls on
both alike. Medians per call (per frame for the 8-frame clips).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from pipeline_calls import ab_setup, in_turns, pipeline_calls, print_ab_table

from hyperseg_lite.modeling import deformable_attention as deform

CALLS = [
    "referring (1 expression)",
    "semantic (8 classes)",
    "video object tracking, per frame",
    "referring video, per frame",
    "video instances (8 classes), per frame",
]


def sampling(form):
    """Route the model's deformable attention through one form (``deformable_sample`` is read at call time)."""

    @contextmanager
    def use():
        default = deform.deformable_sample
        deform.deformable_sample = form
        try:
            yield
        finally:
            deform.deformable_sample = default

    return use


FORMS = {
    "grid_sample (the release)": sampling(deform.deformable_sample_grid),
    "gather (CPU default)": sampling(deform.deformable_sample_gather),
}


def main() -> None:
    args, loaded, pipe = ab_setup(__doc__)
    attention = pipe.model.pixel_decoder.transformer.encoder.layers[0].self_attn
    heads, dim = attention.num_heads, attention.dim // attention.num_heads
    shapes = [(256 // s, 256 // s) for s in (32, 16, 8)]
    tokens = sum(h * w for h, w in shapes)
    gen = torch.Generator().manual_seed(0)
    value = torch.randn(1, tokens, heads, dim, generator=gen)
    locations = torch.rand(1, tokens, heads, len(shapes), attention.num_points, 2, generator=gen)
    weights = torch.rand(1, tokens, heads, len(shapes), attention.num_points, generator=gen).softmax(-1)

    def op() -> None:
        with torch.inference_mode():
            deform.deformable_sample(value, shapes, locations, weights)

    def op_training() -> None:
        inputs = [t.clone().requires_grad_() for t in (value, locations, weights)]
        deform.deformable_sample(inputs[0], shapes, inputs[1], inputs[2]).sum().backward()

    print(f"model: {loaded.describe()} | {torch.get_num_threads()} threads | {args.rounds} rounds")
    ops = {"inference": (op, 1), "forward + backward": (op_training, 1)}
    print_ab_table(
        f"The op, {tokens} queries x {heads} heads x {len(shapes)} levels x {attention.num_points} points",
        tuple(FORMS),
        in_turns(ops, 3 * args.rounds, FORMS),
        ops,
    )
    with torch.inference_mode():
        medians = in_turns(pipeline_calls(pipe, CALLS), args.rounds, FORMS)
    print_ab_table("The pipeline, 256x256 image", tuple(FORMS), medians, CALLS)


if __name__ == "__main__":
    main()
