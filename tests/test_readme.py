"""The README works as written: its Python blocks run, its set-up commands are what CI runs, the notebooks open.

Each ```python block of README.md runs in its own namespace from a temporary folder holding the files the
snippets name (``photo.jpg``, ``clip.mp4``, ``long.mp4``: small scenes of the test world), so a ``NameError`` or
a renamed method fails here and nothing is written into the repository. A block that cannot run here (it
downloads HyperSeg-3B) is preceded by ``<!-- readme-test: skip (reason) -->``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import cv2
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BLOCK = re.compile(r"(?P<skip><!-- readme-test: skip \((?P<reason>[^)]*)\) -->\n)?```python\n(?P<code>.*?)```", re.S)
BLOCKS = [(m["code"], m["reason"]) for m in BLOCK.finditer(README)]


def _heading(code: str) -> str:
    """The README section a block belongs to (for readable test ids)."""
    before = README[: README.index(code)]
    return re.findall(r"^#+ (.+)$", before, re.M)[-1].lower().replace(" ", "-")[:30]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """The files the snippets name: one test-world image and a 4-frame clip of the world, as JPEG and MP4."""
    from hyperseg_lite.data import World

    folder = tmp_path_factory.mktemp("readme")
    world = World("test", seed=0, image_size=256, clip_length=(4, 4))
    cv2.imwrite(str(folder / "photo.jpg"), cv2.cvtColor(world.sample("referring", 0).image, cv2.COLOR_RGB2BGR))
    frames = world.sample("vos", 0).frames
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(folder / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 5, (width, height))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    shutil.copy(folder / "clip.mp4", folder / "long.mp4")
    return folder


def test_the_readme_has_python_blocks_and_says_why_it_skips_one():
    assert len(BLOCKS) >= 3
    assert all(reason for _, reason in BLOCKS if reason is not None)


@pytest.mark.parametrize("code, skip", BLOCKS, ids=[_heading(code) for code, _ in BLOCKS])
def test_python_block_runs_as_written(code, skip, inputs, monkeypatch):
    if skip:
        pytest.skip(f"README block not run here: {skip}")
    monkeypatch.chdir(inputs)
    exec(compile(code, "README.md", "exec"), {"__name__": "__readme__"})


def test_ci_runs_the_readme_test_command():
    """`.ci/run` installs and tests exactly as the README's quick start tells a newcomer to."""
    command = next(line for line in README.splitlines() if line.endswith("&& python -m pytest"))
    ci = (ROOT / ".ci" / "run").read_text()
    for part in (p.strip() for p in command.split("&&")):
        assert part.replace("pip install", "python -m pip install --quiet") in ci, part


def test_the_notebook_command_of_the_readme_has_what_it_needs():
    """`jupyter lab notebooks/` after `pip install -e ".[notebooks]"`: JupyterLab is there, and ipywidgets, without
    which every tqdm progress bar in a notebook warns "IProgress not found"."""
    assert 'pip install -e ".[notebooks]" && jupyter lab notebooks/' in README
    import ipywidgets  # noqa: F401

    jupyter = shutil.which("jupyter") or pytest.fail("no `jupyter` command: install the notebooks extra")
    result = subprocess.run([jupyter, "lab", "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_the_model_card_says_how_long_the_embedded_model_trained():
    """app.py shows the card's `trained_on`; it must agree with the training log shipped beside the weights."""
    import csv

    from huggingface_hub import metadata_load

    folder = ROOT / "assets" / "hyperseg-lite"
    meta = metadata_load(folder / "README.md")
    with open(folder / "training_log.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    steps = int(rows[-1]["total_step"])
    assert meta["training_steps"] == steps == len(rows)
    assert f"{steps:,} steps" in meta["trained_on"]
    cycles = len({row["cycle"] for row in rows})
    assert f"{cycles} cycle{'s' if cycles > 1 else ''})" in meta["trained_on"]
    assert len((folder / "README.md").read_text().splitlines()) < 200


def test_requirements_txt_is_what_the_app_needs_and_nothing_else():
    """A Space installs requirements.txt and runs app.py: the runtime dependencies plus the `app` extra of
    pyproject.toml, in step with it (no test or notebook tools)."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["app"]
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    listed = [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]
    assert listed == wanted


def _shell_commands(module: str) -> list[list[str]]:
    """Every ``python -m <module> ...`` command of the README's bash blocks, continuation lines joined, comments cut."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README, re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith(f"python -m {module} "):
                commands.append(line.split()[3:])
    return commands


def test_the_readme_training_commands_parse_as_written():
    """A renamed or removed flag breaks a recipe a student copies: each command's flags must still be accepted."""
    from hyperseg_lite.pretrain_vision import parse_args as parse_stage1
    from hyperseg_lite.training.arguments import parse_arguments

    stage2, stage1 = _shell_commands("hyperseg_lite.train"), _shell_commands("hyperseg_lite.pretrain_vision")
    assert stage2 and stage1
    for argv in stage2:
        if "--resume" not in argv:  # a resumed run's flags come from its folder
            parse_arguments([a for a in argv if a != "..."])
    for argv in stage1:
        parse_stage1(argv)
    lite2 = ("--colour-attributes", "--category-attributes", "--region-fine-features")
    assert any(all(flag in argv for flag in lite2) for argv in stage2)
