"""Stage 1's instance loss: each object's mask drawn from its own pooled mask features, as a mask token draws it."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from hyperseg_lite.pretrain_vision import main as pretrain_vision
from hyperseg_lite.training.vision_heads import InstanceQueryHead, instance_ious, instance_losses, instance_targets


def touching_squares(size: int = 16) -> torch.Tensor:
    """Two objects side by side, sharing an edge, on background: (2, size, size)."""
    masks = torch.zeros(2, size, size)
    masks[0, 4:12, 3:8] = 1
    masks[1, 4:12, 8:14] = 1
    return masks


def test_the_loss_splits_two_touching_objects_whose_features_start_alike():
    """Features that are the same everywhere (what class, colour and outline losses allow for two touching objects
    of one kind) give one mask for both; the instance loss moves them until each query finds its own object."""
    torch.manual_seed(0)
    masks = [touching_squares()]
    features = torch.nn.Parameter(torch.ones(1, 8, 16, 16) + 0.01 * torch.randn(1, 8, 16, 16))
    head = InstanceQueryHead(8)
    targets = instance_targets(masks, (16, 16))
    before = instance_ious(head(features, masks), targets)
    optimizer = torch.optim.Adam([features, *head.parameters()], lr=0.05)
    for _ in range(200):
        loss = sum(instance_losses(head(features, masks), targets).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = instance_ious(head(features, masks), targets)
    assert before.max() < 0.6  # at the start a query cannot tell the two apart
    assert after.min() > 0.9


def test_targets_are_the_share_of_each_cell_inside_and_ious_count_whole_objects():
    masks = [touching_squares(16)]
    targets = instance_targets(masks, (8, 8))
    assert targets[0].shape == (2, 8, 8) and targets[0].max() == 1 and 0 < targets[0][0, 2, 1] < 1
    perfect = [torch.where(targets[0] >= 0.5, 5.0, -5.0)]
    assert torch.allclose(instance_ious(perfect, targets), torch.ones(2))
    merged = [torch.where((targets[0] >= 0.5).any(0, keepdim=True), 5.0, -5.0).expand(2, -1, -1)]
    assert torch.allclose(instance_ious(merged, targets), torch.full((2,), 0.5))


def test_stage_one_trains_the_instance_loss_with_the_pixel_decoder_and_measures_it(tmp_path):
    small = ["--steps", "2", "--batch-size", "2", "--pool-size", "4", "--eval-scenes", "2", "--probe-scenes", "4"]
    small += ["--eval-every", "2", "--threads", "1", "--preset", "tiny2"]
    with pytest.raises(SystemExit):  # it trains the pixel decoder's features: none without one
        pretrain_vision(["--output", str(tmp_path / "none"), "--instance-loss-weight", "1", *small])
    run = tmp_path / "vision_inst"
    metrics = pretrain_vision(
        ["--output", str(run), "--pixel-decoder-weight", "1", "--instance-loss-weight", "1", *small]
    )
    assert 0 <= metrics["decoder_instance_probe"] <= 1 and 0 <= metrics["decoder_instance_below_half"] <= 1
    header = (run / "log.csv").read_text().splitlines()[0].split(",")
    assert {"instance_bce", "instance_dice"} <= set(header)
    assert load_file(str(run / "checkpoint" / "heads.safetensors"))["instances.query.weight"].shape == (32, 32)
    pretrain_vision(["--resume", str(run), "--steps", "3"])  # the folder keeps the switch
    assert "instance_bce" in (run / "log.csv").read_text().splitlines()[0]
    plain = pretrain_vision(["--output", str(tmp_path / "plain"), "--pixel-decoder-weight", "1", *small])
    assert "decoder_instance_probe" in plain  # the probe measures runs without the loss as well
