"""Training on the world: every task batches, a few steps lower the loss on a fixed batch, the CLI checkpoints
and resumes."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from hyperseg_lite import build_random_model
from hyperseg_lite.data import TASKS, World
from hyperseg_lite.train import main, training_step


@pytest.fixture(scope="module")
def world():
    return World("train", 0, image_size=64, clip_length=(2, 2))


@pytest.mark.parametrize("task", TASKS)
def test_every_task_gives_a_finite_loss(world, task):
    loaded = build_random_model("tiny", seed=0)
    loss, parts = training_step(loaded, [world.sample(task, 0), world.sample(task, 1)], "cpu")
    assert torch.isfinite(loss) and loss.requires_grad
    assert "loss_mask" in parts and "loss_cls" in parts
    if task in ("vis", "vos"):
        assert "loss_ins" in parts


def test_steps_on_a_fixed_batch_lower_the_loss(world):
    loaded = build_random_model("tiny", seed=1)
    loaded.model.train()
    samples = [world.sample("referring", i) for i in range(2)]
    optimizer = torch.optim.AdamW(loaded.model.parameters(), lr=2e-3)
    losses = []
    for _ in range(6):
        torch.manual_seed(0)
        loss, _ = training_step(loaded, samples, "cpu")
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert losses[-1] < losses[0]


def test_cli_logs_checkpoints_and_resumes(tmp_path):
    out = tmp_path / "run"
    checkpoint = main(["--preset", "tiny", "--steps", "3", "--batch-size", "1", "--output", str(out),
                       "--tasks", "referring", "interactive", "--save-every", "2"])
    assert (checkpoint / "model.safetensors").exists()
    assert json.loads((checkpoint / "trainer_state.json").read_text())["step"] == 3
    main(["--output", str(out), "--resume", str(out), "--steps", "4", "--batch-size", "1",
          "--tasks", "referring", "interactive"])
    rows = list(csv.DictReader(open(out / "log.csv")))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert json.loads((checkpoint / "trainer_state.json").read_text())["step"] == 4


def test_cli_init_starts_a_new_run_from_trained_weights(tmp_path):
    from safetensors.torch import load_file

    first = main(["--preset", "tiny", "--steps", "2", "--batch-size", "1", "--output", str(tmp_path / "a"),
                  "--tasks", "referring"])
    trained = load_file(first / "model.safetensors")
    second = main(["--init", str(first), "--steps", "1", "--batch-size", "1", "--lr", "0", "--seed", "1",
                   "--output", str(tmp_path / "b"), "--tasks", "referring"])
    assert json.loads((second / "trainer_state.json").read_text())["step"] == 1  # a new count, not a resume
    after = load_file(second / "model.safetensors")
    assert all(torch.equal(trained[k], after[k]) for k in trained)  # lr 0: the weights are exactly the init ones
    with pytest.raises(SystemExit):
        main(["--init", str(first), "--resume", str(tmp_path / "a"), "--output", str(tmp_path / "c")])
