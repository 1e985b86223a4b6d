"""Training on the world: every task batches, a few steps lower the loss on a fixed batch, the CLI checkpoints
and resumes."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch

from hyperseg_lite import build_random_model, load_model
from hyperseg_lite.data import TASKS, World
from hyperseg_lite.train import VISION_MODULES, StepBatches, main, parse_task_weights, task_schedule, training_step


@pytest.fixture(scope="module")
def world():
    return World("train", 0, image_size=64, clip_length=(2, 2))


@pytest.mark.parametrize("task", TASKS)
def test_every_task_gives_a_finite_loss(world, task):
    loaded = build_random_model("tiny", seed=0)
    loss, parts = training_step(loaded, [world.sample(task, 0), world.sample(task, 1)], "cpu")
    assert torch.isfinite(loss) and loss.requires_grad
    if task == "describe":  # naming only: the text loss, no mask queries
        assert set(parts) == {"loss_text"}
    else:
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
    checkpoint = main(
        [
            "--preset",
            "tiny",
            "--steps",
            "3",
            "--batch-size",
            "1",
            "--output",
            str(out),
            "--tasks",
            "referring",
            "interactive",
            "--save-every",
            "2",
        ]
    )
    assert (checkpoint / "model.safetensors").exists()
    assert json.loads((checkpoint / "trainer_state.json").read_text())["step"] == 3
    main(
        [
            "--output",
            str(out),
            "--resume",
            str(out),
            "--steps",
            "4",
            "--batch-size",
            "1",
            "--tasks",
            "referring",
            "interactive",
        ]
    )
    rows = list(csv.DictReader(open(out / "log.csv")))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert json.loads((checkpoint / "trainer_state.json").read_text())["step"] == 4


def test_cli_init_starts_a_new_run_from_trained_weights(tmp_path):
    from safetensors.torch import load_file

    first = main(
        [
            "--preset",
            "tiny",
            "--steps",
            "2",
            "--batch-size",
            "1",
            "--output",
            str(tmp_path / "a"),
            "--tasks",
            "referring",
        ]
    )
    trained = load_file(first / "model.safetensors")
    second = main(
        [
            "--init",
            str(first),
            "--steps",
            "1",
            "--batch-size",
            "1",
            "--lr",
            "0",
            "--seed",
            "1",
            "--output",
            str(tmp_path / "b"),
            "--tasks",
            "referring",
        ]
    )
    assert json.loads((second / "trainer_state.json").read_text())["step"] == 1  # a new count, not a resume
    after = load_file(second / "model.safetensors")
    assert all(torch.equal(trained[k], after[k]) for k in trained)  # lr 0: the weights are exactly the init ones
    with pytest.raises(SystemExit):
        main(["--init", str(first), "--resume", str(tmp_path / "a"), "--output", str(tmp_path / "c")])


def test_a_new_run_into_a_folder_that_holds_one_is_refused_and_leaves_it_whole(tmp_path):
    """Starting a run over an old one used to append its steps to the old log.csv (two runs mixed in one history)."""
    first = main(
        [
            "--preset",
            "tiny",
            "--steps",
            "2",
            "--batch-size",
            "1",
            "--output",
            str(tmp_path / "a"),
            "--tasks",
            "referring",
        ]
    )
    log_before = (tmp_path / "a" / "log.csv").read_text()
    weights_before = (first / "model.safetensors").read_bytes()
    for start in (["--preset", "tiny"], ["--init", str(first)]):
        with pytest.raises(SystemExit):
            main([*start, "--steps", "1", "--batch-size", "1", "--output", str(tmp_path / "a"), "--tasks", "referring"])
    assert (tmp_path / "a" / "log.csv").read_text() == log_before
    assert (first / "model.safetensors").read_bytes() == weights_before


def test_class_weight_reweights_the_prompt_score_loss_and_is_saved(tmp_path, world):
    first = main(
        [
            "--preset",
            "tiny",
            "--steps",
            "1",
            "--batch-size",
            "1",
            "--output",
            str(tmp_path / "a"),
            "--tasks",
            "referring",
        ]
    )
    assert json.loads((first / "config.json").read_text())["loss_class_weight"] == 2.0
    second = main(
        [
            "--init",
            str(first),
            "--steps",
            "1",
            "--batch-size",
            "1",
            "--lr",
            "0",
            "--class-weight",
            "6",
            "--output",
            str(tmp_path / "b"),
            "--tasks",
            "referring",
        ]
    )
    assert json.loads((second / "config.json").read_text())["loss_class_weight"] == 6.0
    parts = {}
    for folder in (first, second):
        loaded = load_model(folder, precision="fp32", device_map="cpu")
        torch.manual_seed(0)
        parts[folder] = training_step(loaded, [world.sample("referring", 0)], "cpu")[1]
    # same weights (lr 0), same batch: loss_cls is 3x larger, the mask losses are unchanged
    assert parts[second]["loss_cls"] == pytest.approx(3 * parts[first]["loss_cls"], rel=1e-4)
    assert parts[second]["loss_dice"] == pytest.approx(parts[first]["loss_dice"], rel=1e-5)
    with pytest.raises(SystemExit):
        main(["--init", str(first), "--steps", "1", "--class-weight", "0", "--output", str(tmp_path / "c")])
    # the presence loss: off in a fresh model (as HyperSeg), switched on for a run and saved with its config
    assert json.loads((first / "config.json").read_text())["loss_presence_weight"] == 0.0
    assert "loss_presence" not in parts[first]
    third = main(
        ["--init", str(first), "--steps", "1", "--batch-size", "1", "--lr", "0", "--presence-loss-weight", "1"]
        + ["--output", str(tmp_path / "d"), "--tasks", "referring", "--presence-query", "matched"]
    )
    saved = json.loads((third / "config.json").read_text())
    assert saved["loss_presence_weight"] == 1.0 and saved["loss_presence_query"] == "matched"
    assert json.loads((first / "config.json").read_text())["loss_presence_query"] == "best"
    torch.manual_seed(0)
    assert (
        training_step(load_model(third, precision="fp32", device_map="cpu"), [world.sample("referring", 0)], "cpu")[1][
            "loss_presence"
        ]
        > 0
    )


def test_task_weights_draw_tasks_in_proportion_with_fresh_samples_each_time():
    tasks = ["referring", "interactive", "vos"]
    assert task_schedule(tasks) == tasks  # unweighted runs draw what they always drew
    schedule = task_schedule(tasks, {"referring": 3})
    assert sorted(schedule) == sorted(["referring"] * 3 + ["interactive", "vos"])
    assert all(a != b for a, b in zip(schedule, schedule[1:]))  # spread out, not back to back

    class Recorder:
        def sample(self, task, index):
            return task, index

    batches = StepBatches(Recorder(), tasks, batch_size=2, weights={"referring": 3})
    drawn = [sample for step in range(3 * len(schedule)) for sample in batches[step][1]]
    referring = [index for task, index in drawn if task == "referring"]
    assert referring == list(range(18))  # every draw of a task gets new samples, none repeated
    assert [index for task, index in drawn if task == "vos"] == list(range(6))


@pytest.mark.parametrize("pair", ["referring", "referring=0", "nothing=2", "referring=two"])
def test_bad_task_weights_are_refused_with_the_rule(pair):
    with pytest.raises(ValueError, match="TASK=N"):
        parse_task_weights([pair], ["referring", "interactive"])


def test_reasoning_samples_can_also_ask_with_the_instruction_the_pipeline_sends(world):
    from hyperseg_lite.training.batching import sample_items

    loaded = build_random_model("tiny", seed=0)
    sample = world.sample("reasoning", 0)
    tokenizer = loaded.tokenizer

    def prompt_and_target(explain):
        encoded = sample_items(sample, loaded.processor, explain=explain).encoded
        taught = encoded.labels[encoded.labels >= 0]
        text_ids = encoded.input_ids[encoded.input_ids >= 0]  # image placeholders are negative
        return tokenizer.decode(text_ids), tokenizer.decode(taught)

    explain_prompt, explain_target = prompt_and_target(True)
    plain_prompt, plain_target = prompt_and_target(False)
    assert "explain why" in explain_prompt and sample.answer in explain_target
    assert "explain why" not in plain_prompt and sample.answer not in plain_target

    samples = [world.sample("reasoning", i) for i in range(2)]
    loss, _ = training_step(loaded, samples, "cpu", reasoning_prompts="both")
    assert torch.isfinite(loss)


def test_mask_shape_embedding_is_switched_on_trained_at_a_higher_rate_and_resumed(tmp_path):
    from safetensors.torch import load_file

    first = main(
        [
            "--preset",
            "tiny",
            "--steps",
            "1",
            "--batch-size",
            "1",
            "--output",
            str(tmp_path / "a"),
            "--tasks",
            "panoptic",
        ]
    )
    out = tmp_path / "b"
    second = main(
        [
            "--init",
            str(first),
            "--steps",
            "2",
            "--batch-size",
            "1",
            "--mask-shape-embedding",
            "--new-parts-lr-scale",
            "10",
            "--output",
            str(out),
            "--tasks",
            "panoptic",
        ]
    )
    assert json.loads((second / "config.json").read_text())["decoder_config"]["mask_shape_embedding"] is True
    weights = load_file(second / "model.safetensors")
    assert weights["mask_decoder.mask_shape.out.weight"].abs().sum() > 0  # trained away from its zero start
    groups = torch.load(second / "optimizer.pt", weights_only=True)["param_groups"]
    assert len(groups) == 2 and groups[1]["initial_lr"] == pytest.approx(10 * groups[0]["initial_lr"])
    main(
        [
            "--output",
            str(out),
            "--resume",
            str(out),
            "--steps",
            "3",
            "--batch-size",
            "1",
            "--mask-shape-embedding",
            "--tasks",
            "panoptic",
        ]
    )
    assert json.loads((second / "trainer_state.json").read_text())["step"] == 3


def test_a_save_cut_short_keeps_the_previous_checkpoint_and_resume_repeats_the_lost_steps(tmp_path, monkeypatch):
    """A run killed while saving (or after its last save) resumes from a whole checkpoint, with one log row a step."""
    from safetensors.torch import load_file

    import hyperseg_lite.train as train

    out = tmp_path / "run"
    args = ["--preset", "tiny", "--batch-size", "1", "--output", str(out), "--tasks", "referring", "--save-every", "2"]
    real_save = torch.save

    saves = {"done": 0}

    def dies_in_the_second_save(obj, path, *a, **k):
        if saves["done"] == 1:
            raise KeyboardInterrupt("killed while saving")
        real_save(obj, path, *a, **k)
        if Path(path).name == "scheduler.pt":  # the last torch file of a save: the weights are already written
            saves["done"] += 1
            shutil.copy(Path(path).parent / "model.safetensors", tmp_path / "step2.safetensors")

    monkeypatch.setattr(train.torch, "save", dies_in_the_second_save)
    with pytest.raises(KeyboardInterrupt):
        main(args + ["--steps", "5"])
    monkeypatch.setattr(train.torch, "save", real_save)
    checkpoint = out / "checkpoint"
    assert json.loads((checkpoint / "trainer_state.json").read_text())["step"] == 2  # the step-2 save, whole
    kept, step2 = load_file(checkpoint / "model.safetensors"), load_file(tmp_path / "step2.safetensors")
    assert all(torch.equal(kept[k], step2[k]) for k in step2)  # not half-overwritten by the step-4 save
    assert (checkpoint / "optimizer.pt").exists()
    assert [int(r["step"]) for r in csv.DictReader(open(out / "log.csv"))] == [1, 2, 3, 4]
    main(args + ["--resume", str(out), "--steps", "5"])
    assert [int(r["step"]) for r in csv.DictReader(open(out / "log.csv"))] == [1, 2, 3, 4, 5]  # 3-4 redone once
    assert json.loads((checkpoint / "trainer_state.json").read_text())["step"] == 5
    assert sorted(p.name for p in out.iterdir() if p.name.startswith("checkpoint")) == ["checkpoint"]


def test_resume_finds_the_checkpoint_a_save_left_between_its_two_renames(tmp_path):
    from hyperseg_lite.train import last_checkpoint

    (tmp_path / "checkpoint.previous").mkdir()
    (tmp_path / "checkpoint.previous" / "trainer_state.json").write_text('{"step": 250}')
    folder = last_checkpoint(tmp_path)
    assert folder == tmp_path / "checkpoint" and json.loads((folder / "trainer_state.json").read_text())["step"] == 250


def test_freeze_vision_keeps_the_image_encoders_exactly_and_trains_the_rest(tmp_path):
    """--freeze-vision spends a run on the language side: the image encoders come out bit-identical (also across a
    resume), the LLM and the decoder move, and the shape loss that would train the frozen backbone is refused."""
    from safetensors.torch import load_file

    from hyperseg_lite.train import VISION_MODULES

    first = main(
        [
            "--preset",
            "tiny",
            "--steps",
            "1",
            "--batch-size",
            "1",
            "--output",
            str(tmp_path / "a"),
            "--tasks",
            "referring",
        ]
    )
    out = tmp_path / "b"
    common = [
        "--batch-size",
        "1",
        "--lr",
        "1e-2",
        "--freeze-vision",
        "--output",
        str(out),
        "--tasks",
        "referring",
        "panoptic",
    ]
    second = main(["--init", str(first), "--steps", "2", *common])
    main(["--resume", str(out), "--steps", "3", *common])
    before, after = load_file(first / "model.safetensors"), load_file(second / "model.safetensors")
    frozen = [k for k in before if k.split(".")[0] in VISION_MODULES]
    moving = [k for k in before if k.split(".")[0] in ("llm", "mask_decoder", "perceiver")]
    assert frozen and moving
    assert all(torch.equal(before[k], after[k]) for k in frozen)
    assert sum(not torch.equal(before[k], after[k]) for k in moving) > len(moving) // 2
    with pytest.raises(SystemExit):  # the tiny model has no mask-shape embedding: the loss would go to the backbone
        main(
            [
                "--init",
                str(first),
                "--freeze-vision",
                "--shape-loss-weight",
                "1",
                "--steps",
                "1",
                "--output",
                str(tmp_path / "c"),
                "--tasks",
                "panoptic",
            ]
        )


def test_resume_needs_only_the_run_folder_and_refuses_changed_switches(tmp_path, capsys):
    """The run's switches live in its checkpoint (training_args.json): `--resume RUN` alone continues the same run
    (new parts at their own rate, the image encoders still frozen), `--steps` may go on, a changed switch is refused
    with one sentence, and repeating the same switches (as older commands did) still works."""
    from safetensors.torch import load_file

    first = main(
        [
            "--preset",
            "tiny",
            "--steps",
            "1",
            "--batch-size",
            "1",
            "--output",
            str(tmp_path / "a"),
            "--tasks",
            "panoptic",
        ]
    )
    out = tmp_path / "b"
    switches = [
        "--batch-size",
        "1",
        "--lr",
        "1e-2",
        "--mask-shape-embedding",
        "--freeze-vision",
        "--tasks",
        "panoptic",
        "referring",
        "--task-weights",
        "panoptic=2",
        "--seed",
        "3",
    ]
    main(["--init", str(first), "--steps", "2", "--output", str(out), *switches])
    stored = json.loads((out / "checkpoint" / "training_args.json").read_text())
    assert stored["mask_shape_embedding"] and stored["freeze_vision"] and stored["task_weights"] == ["panoptic=2"]
    assert stored["tasks"] == ["panoptic", "referring"] and stored["lr"] == 1e-2 and stored["steps"] == 2

    checkpoint = main(["--resume", str(out), "--steps", "4"])
    assert checkpoint == out / "checkpoint"
    assert json.loads((checkpoint / "trainer_state.json").read_text())["step"] == 4
    assert [r["task"] for r in csv.DictReader(open(out / "log.csv"))] == [
        "panoptic",
        "referring",
        "panoptic",
        "panoptic",
    ]  # the weighted schedule
    groups = torch.load(checkpoint / "optimizer.pt", weights_only=True)["param_groups"]
    assert len(groups) == 2 and groups[1]["initial_lr"] == pytest.approx(10 * groups[0]["initial_lr"])
    before, after = load_file(first / "model.safetensors"), load_file(checkpoint / "model.safetensors")
    assert all(torch.equal(before[k], after[k]) for k in before if k.split(".")[0] in VISION_MODULES)
    assert json.loads((checkpoint / "training_args.json").read_text())["steps"] == 4

    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["--resume", str(out), "--steps", "5", "--lr", "1"])
    assert "--lr 1.0 differs from the run's 0.01" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--resume", str(out), "--steps", "5", "--output", str(tmp_path / "elsewhere")])
    main(["--resume", str(out), "--steps", "5", "--output", str(out), *switches])  # the same switches again: fine
    assert json.loads((checkpoint / "trainer_state.json").read_text())["step"] == 5


def test_a_run_stopped_early_then_forked_with_other_task_weights_keeps_its_schedule_and_says_where(tmp_path):
    """`--stop-at` ends an invocation at a step with a checkpoint, the learning rate still on the full schedule;
    `--resume RUN --task-weights ...` forks the run there: later steps draw the new cycle, and training_args.json
    says which weights ran until which step (how a fork is reproduced from the README's commands)."""
    common = ["--preset", "tiny", "--batch-size", "1", "--tasks", "panoptic", "referring", "--workers", "0"]
    whole = main([*common, "--steps", "6", "--output", str(tmp_path / "whole")])
    out = tmp_path / "forked"
    main([*common, "--steps", "6", "--stop-at", "2", "--output", str(out)])
    assert json.loads((out / "checkpoint" / "trainer_state.json").read_text())["step"] == 2

    with pytest.raises(SystemExit, match="already at step 2"):
        main(["--resume", str(out), "--stop-at", "2"])
    main(["--resume", str(out), "--task-weights", "referring=2", "--stop-at", "5"])
    stored = json.loads((out / "checkpoint" / "training_args.json").read_text())
    assert stored["task_weights"] == ["referring=2"] and stored["steps"] == 6
    assert stored["task_weight_phases"] == [{"until_step": 2, "task_weights": []}]
    main(["--resume", str(out)])  # goes on to --steps with the fork's weights, its history kept
    stored = json.loads((out / "checkpoint" / "training_args.json").read_text())
    assert stored["task_weight_phases"] == [{"until_step": 2, "task_weights": []}]

    rows = list(csv.DictReader(open(out / "log.csv")))
    # steps 1-2 the plain cycle; steps 3-6 the weighted cycle (referring, panoptic, referring) at positions 2, 0, 1, 2
    assert [r["task"] for r in rows] == ["panoptic", "referring", "referring", "referring", "panoptic", "referring"]
    whole_rows = list(csv.DictReader(open(whole.parent / "log.csv")))
    assert [r["lr"] for r in rows] == [r["lr"] for r in whole_rows]  # one schedule, stopped or not
    assert json.loads((whole / "trainer_state.json").read_text())["step"] == 6


def test_a_pixel_decoder_held_fixed_can_be_released_at_a_lower_rate_on_resume(tmp_path):
    """`--pixel-decoder-lr-scale 0` holds the pretrained pixel decoder fixed while the parts after it learn; a
    resume with another scale releases it from the checkpoint's step on, at that fraction of the schedule's rate,
    and training_args.json says until when it was held (the design the lite2 recipe may take next)."""
    from safetensors.torch import load_file

    out = tmp_path / "run"
    common = ["--preset", "tiny", "--batch-size", "1", "--tasks", "panoptic", "--workers", "0", "--warmup", "1"]
    main([*common, "--steps", "6", "--pixel-decoder-lr-scale", "0", "--stop-at", "1", "--output", str(out)])
    checkpoint = out / "checkpoint"
    first = load_file(checkpoint / "model.safetensors")
    main(["--resume", str(out), "--stop-at", "2"])
    start = load_file(checkpoint / "model.safetensors")
    decoder = [k for k in start if k.startswith("pixel_decoder.") and start[k].is_floating_point()]
    assert decoder and all(torch.equal(first[k], start[k]) for k in decoder)  # held fixed
    main(["--resume", str(out), "--pixel-decoder-lr-scale", "0.1", "--stop-at", "4"])
    stored = json.loads((checkpoint / "training_args.json").read_text())
    assert stored["pixel_decoder_lr_scale"] == 0.1
    assert stored["pixel_decoder_lr_scale_phases"] == [{"until_step": 2, "pixel_decoder_lr_scale": 0.0}]
    assert "task_weight_phases" not in stored  # the task weights did not change
    released = load_file(checkpoint / "model.safetensors")
    assert any(not torch.equal(start[k], released[k]) for k in decoder)  # trained from step 3 on
    groups = torch.load(checkpoint / "optimizer.pt", weights_only=True)["param_groups"]
    assert groups[-1]["initial_lr"] == pytest.approx(0.1 * groups[0]["initial_lr"])
    assert groups[-1]["lr"] / groups[-1]["initial_lr"] == pytest.approx(groups[0]["lr"] / groups[0]["initial_lr"])
    main(["--resume", str(out)])  # its optimizer now has the pixel decoder's group: resumes as any run
    assert json.loads((checkpoint / "trainer_state.json").read_text())["step"] == 6
    stored = json.loads((checkpoint / "training_args.json").read_text())
    assert stored["pixel_decoder_lr_scale_phases"] == [{"until_step": 2, "pixel_decoder_lr_scale": 0.0}]


def test_stop_at_must_fall_inside_the_run(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--preset", "tiny", "--steps", "3", "--stop-at", "3", "--output", str(tmp_path / "a")])
    assert "--stop-at must be between 0 and --steps 3" in capsys.readouterr().err


def test_seg_concat_is_switched_on_for_a_run_saved_and_reloaded(tmp_path):
    first = main(
        ["--preset", "tiny", "--steps", "1", "--batch-size", "1", "--output", str(tmp_path / "a")]
        + ["--tasks", "referring"]
    )
    assert json.loads((first / "config.json").read_text())["decoder_config"]["seg_concat"] is False
    second = main(
        ["--init", str(first), "--steps", "1", "--batch-size", "1", "--seg-concat", "--lr", "0"]
        + ["--output", str(tmp_path / "b"), "--tasks", "referring"]
    )
    assert json.loads((second / "config.json").read_text())["decoder_config"]["seg_concat"] is True
    reloaded = load_model(second, precision="fp32", device_map="cpu").model
    assert reloaded.mask_decoder.seg_concat
    decoder = reloaded.mask_decoder  # lr 0: the positions are still the switch's starting point
    assert torch.equal(decoder.SEG_query_embed.weight[1:], decoder.query_embed.weight)


def test_a_negative_pixel_decoder_rate_is_refused_in_one_sentence(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--preset", "tiny", "--steps", "1", "--pixel-decoder-lr-scale", "-1", "--output", str(tmp_path / "a")])
    assert "--pixel-decoder-lr-scale must be 0 or more" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(
            ["--preset", "tiny", "--freeze-vision", "--pixel-decoder-lr-scale", "0.1", "--output", str(tmp_path / "b")]
        )
    assert "already holds the pixel decoder fixed" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
