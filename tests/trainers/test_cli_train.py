"""`lyriscope train` end to end on a tiny set: training, transfer, errors, signals, Slurm script."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from lyriscope.trainers.checkpoint import load_model, load_training_state, save_model
from lyriscope.trainers.commands.train import main
from lyriscope.trainers.random_model import random_generator
from lyriscope.trainers.training_loop import read_stats

RES = 16
TINY = [
    "--batch",
    "4",
    "--channel-base",
    "256",
    "--channel-max",
    "16",
    "--mapping-layers",
    "2",
    "--workers",
    "0",
    "--metrics",
    "none",
    "--tick-kimg",
    "0.004",
    "--snap",
    "1",
]

pytestmark = pytest.mark.usefixtures("one_thread")


def _dataset_zip(path: Path, *, res: int, count: int = 8) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(count)
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(count):
            img = np.zeros([res, res, 3], dtype=np.uint8)
            x, y = rng.randint(0, res // 2, size=2)
            img[y : y + res // 2, x : x + res // 2] = rng.randint(60, 256, size=3)
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, format="PNG")
            zf.writestr(f"00000/img{i:08d}.png", buf.getvalue())
        zf.writestr("dataset.json", json.dumps({"labels": None}))


@pytest.fixture(scope="module")
def song_set(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sets") / "tiny"
    root.mkdir()
    sf.write(root / "song.wav", np.zeros(22050, dtype=np.float32), 22050)
    (root / "song.lrc").write_text(
        "[00:00.00]first line\n[00:00.50]second line\n", encoding="utf-8"
    )
    (root / "set.toml").write_text(
        """
[song]
title = "tiny"
audio = "song.wav"
lyrics = "song.lrc"
[[line]]
text = "first line"
model = "models/line-01.safetensors"
[[line]]
text = "second line"
""",
        encoding="utf-8",
    )
    _dataset_zip(root / "data" / "line-01.zip", res=RES)
    _dataset_zip(root / "data" / "line-02.zip", res=RES)
    return root


def test_help_imports_nothing_heavy():
    code = (
        "import sys, lyriscope.trainers.commands.train as m, argparse; "
        "m.configure(argparse.ArgumentParser()); "
        "heavy = [n for n in ('torch', 'numpy', 'PIL') if n in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        ([], "--line N"),
        (["--line", "3"], "has lines 1 to 2"),
        (["--line", "1", "--metrics", "is"], "not a metric"),
        (["--all", "--data", "x.zip"], "--data names one dataset"),
        (["--line", "1", "--aug", "fixed"], "needs --p"),
    ],
)
def test_bad_input_is_one_sentence_and_exit_2(
    song_set: Path, argv: list[str], match: str, capsys, tmp_path: Path
):
    assert main([str(song_set), "--outdir", str(tmp_path), *TINY, *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert match in err and len(err.splitlines()) == 1


def test_a_dataset_smaller_than_a_minibatch_is_trained_with_a_warning(
    song_set: Path, tmp_path: Path, capsys
):
    _dataset_zip(tmp_path / "two.zip", res=RES, count=2)
    argv = [str(song_set), "--line", "2", "--data", str(tmp_path / "two.zip"), "--kimg", "0.004"]
    argv += ["--outdir", str(tmp_path / "runs"), "--output", str(tmp_path / "m.safetensors")]
    assert main([*argv, *TINY, "--ops", "ref"]) == 0
    err = capsys.readouterr().err
    assert (
        "warning: line 2: 2 images but 4 a step: every step shows each image about 2 times" in err
    )


def test_from_a_model_of_another_resolution_is_refused(song_set: Path, tmp_path: Path, capsys):
    save_model(
        tmp_path / "base32.safetensors", random_generator(32, channel_base=256, channel_max=16)
    )
    code = main(
        [
            str(song_set),
            "--line",
            "1",
            "--from",
            str(tmp_path / "base32.safetensors"),
            "--outdir",
            str(tmp_path),
            *TINY,
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "32² images but the dataset is 16²" in err


def test_train_a_line_from_a_base_model(song_set: Path, tmp_path: Path, capsys):
    base = random_generator(RES, channel_base=256, channel_max=16, mapping_layers=2, seed=5)
    save_model(tmp_path / "base.safetensors", base)
    code = main(
        [
            str(song_set),
            "--line",
            "1",
            "--kimg",
            "0.008",
            "--from",
            str(tmp_path / "base.safetensors"),
            "--freezed",
            "2",
            "--outdir",
            str(tmp_path / "runs"),
            *TINY,
            "--metrics",
            "kid",
            "--metrics-gen",
            "32",
            "--ops",
            "ref",
        ]
    )
    assert code == 0
    assert "every step shows each image" not in capsys.readouterr().err  # 8 images, batch 4
    G = load_model(song_set / "models" / "line-01.safetensors")
    shapes = {n: t.shape for n, t in base.state_dict().items()}
    assert {n: t.shape for n, t in G.state_dict().items()} == shapes  # the base's architecture
    state = load_training_state(tmp_path / "runs" / "line-01" / "training-state.pt")
    assert state["batch_idx"] == 2 and state["config"]["freeze_d"] == 2
    grids = sorted((tmp_path / "runs" / "line-01").glob("samples-*.png"))
    assert grids and grids[-1].name == f"samples-000000.{state['batch_idx'] * 4:03d}.png"
    rows = read_stats(tmp_path / "runs" / "line-01" / "stats.jsonl")
    assert all(row["metrics"]["kid"] is not None for row in rows)  # KID at every snapshot
    moved = [n for n, t in base.state_dict().items() if not torch.equal(t, state["G"][n])]
    assert moved


def test_sigterm_saves_a_checkpoint_exits_143_and_resume_continues(song_set: Path, tmp_path: Path):
    runs = tmp_path / "runs"
    state_path = runs / "line-02" / "training-state.pt"
    argv = [str(song_set), "--line", "2", "--outdir", str(runs), *TINY]
    proc = subprocess.Popen(
        [sys.executable, "-m", "lyriscope.trainers.commands.train", *argv, "--kimg", "100"],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not state_path.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert state_path.exists(), proc.communicate(timeout=5)[1].decode()[-2000:]
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err.decode()[-2000:]
    assert "--resume" in err.decode()
    stopped = load_training_state(state_path)["batch_idx"]
    kimg = (stopped + 2) * 4 / 1000
    assert main([*argv, "--kimg", str(kimg), "--resume"]) == 0
    assert load_training_state(state_path)["batch_idx"] == stopped + 2


def test_slurm_writes_a_job_array_that_resumes(song_set: Path, tmp_path: Path, capsys):
    outdir = tmp_path / "runs"
    assert (
        main(
            [
                str(song_set),
                "--all",
                "--slurm",
                "--gpus",
                "4",
                "--kimg",
                "5000",
                "--outdir",
                str(outdir),
            ]
        )
        == 0
    )
    script = outdir / "train.sbatch"
    text = script.read_text()
    assert "#SBATCH --array=1-2" in text and "#SBATCH --gres=gpu:4" in text
    assert "--nproc_per_node=4" in text and "--line $SLURM_ARRAY_TASK_ID --resume" in text
    assert "--kimg 5000.0" in text and "#SBATCH --requeue" in text
    assert f"sbatch {script}" in capsys.readouterr().out
    subprocess.run(["bash", "-n", str(script)], check=True)  # valid shell


def test_from_an_nvlabs_pickle_takes_its_g_ema_and_d(tmp_path: Path):
    # The pickle writers of the importer's tests (tests/trainers/test_import.py).
    sys.path.insert(0, str(Path(__file__).parent))
    from test_import import dump, persistent, snapshot

    from lyriscope.trainers.networks import Discriminator
    from lyriscope.trainers.train_config import auto_config
    from lyriscope.trainers.training_loop import RunPaths, Trainer
    from lyriscope.trainers.transfer import load_base

    G = random_generator(32, channel_base=256, channel_max=16, mapping_layers=2, seed=1)
    G_ema = random_generator(32, channel_base=256, channel_max=16, mapping_layers=2, seed=2)
    data = snapshot(G, G_ema, tmp_path)
    base, fields = load_base(dump(data, tmp_path / "no-d.pkl"), resolution=32)
    assert base.D_state is None  # a pickle without D: D starts fresh
    config = auto_config(32, batch=4, **fields)
    torch.manual_seed(3)
    D = Discriminator(**config.discriminator_kwargs())
    data["D"] = persistent(D, module_src="class Discriminator: pass\n")
    base, _ = load_base(dump(data, tmp_path / "with-d.pkl"), resolution=32)
    trainer = Trainer(config, paths=RunPaths(tmp_path, tmp_path / "m"), device="cpu")
    trainer.load_base(base)
    for name, value in G_ema.state_dict().items():
        assert torch.equal(trainer.G.state_dict()[name], value), name
    for name, value in D.state_dict().items():
        assert torch.equal(trainer.D.state_dict()[name], value), name


def test_resume_with_data_of_another_resolution_is_refused(song_set: Path, tmp_path: Path, capsys):
    argv = [str(song_set), "--line", "2", "--outdir", str(tmp_path), *TINY, "--kimg", "0.004"]
    assert main(argv) == 0
    _dataset_zip(tmp_path / "big.zip", res=32)
    assert main([*argv, "--resume", "--data", str(tmp_path / "big.zip")]) == 2
    assert "was trained on 16² images" in capsys.readouterr().err
    assert main(argv) == 2  # without --resume: the checkpoint is not overwritten
    assert "--resume" in capsys.readouterr().err.splitlines()[-1]


def test_output_names_the_lines_model_file(song_set: Path, tmp_path: Path):
    out = tmp_path / "elsewhere" / "first.safetensors"
    argv = [str(song_set), "--line", "1", "--output", str(out), "--kimg", "0.004"]
    assert main([*argv, "--outdir", str(tmp_path / "runs"), *TINY]) == 0
    assert load_model(out).img_resolution == RES
