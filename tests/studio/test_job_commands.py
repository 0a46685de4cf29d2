"""The command line of each job: what a person would type, options checked before it is queued."""

from __future__ import annotations

import argparse
import re

import pytest
from setfiles import write_set

from lyriscope.errors import LyriscopeError
from lyriscope.setmodel import load_set
from lyriscope.studio.errors import BadRequest
from lyriscope.studio.job_commands import job_spec
from lyriscope.trainers.commands.train import config_from_args, configure
from lyriscope.trainers.lines_config import TrainLinesConfig


@pytest.fixture(scope="module")
def songset(tmp_path_factory):
    return load_set(write_set(tmp_path_factory.mktemp("sets") / "song", lines=("a", "b", "c")))


def test_dataset_jobs_are_the_dataset_commands(songset) -> None:
    root = str(songset.root)
    collect = job_spec(songset, {"kind": "collect", "line": 2, "options": {"per_query": 5}})
    assert collect.argv == ("collect", root, "--line", "2", "--per-query", "5")
    assert (collect.lane, collect.results, collect.key) == (
        "cpu",
        ("images/line-02",),
        "collect:song:2",
    )
    cluster = job_spec(songset, {"kind": "cluster", "line": 1, "options": {"k": 3, "min_side": 64}})
    assert cluster.argv[4:] == ("--k", "3", "--min-side", "64", "--features", "descriptor")
    prepare = job_spec(songset, {"kind": "prepare", "line": 3, "options": {"size": 64}})
    assert prepare.argv[4:] == ("--square", "crop", "--size", "64")
    assert prepare.results == ("data/line-03.zip",)


def test_a_training_job_is_lyriscope_train_with_the_config_written_out(songset) -> None:
    options = {
        "kimg": 0.004,
        "tick_kimg": 0.004,
        "snap": 1,
        "batch": 4,
        "cfg": "tiny",
        "channel_base": 256,
        "channel_max": 16,
        "workers": 0,
        "metrics": "none",
        "device": "cpu",
        "ops": "ref",
        "resume": True,
    }
    spec = job_spec(songset, {"kind": "train", "line": 2, "options": options})
    assert spec.argv[0] == "train" and spec.lane == "gpu" and spec.key == "train:song"
    parser = argparse.ArgumentParser()
    configure(parser)
    config = config_from_args(parser.parse_args(spec.argv[1:]))
    assert config == TrainLinesConfig(
        set_path=songset.root,
        line=2,
        kimg=0.004,
        tick_kimg=0.004,
        snap=1,
        batch=4,
        cfg="tiny",
        channel_base=256,
        channel_max=16,
        workers=0,
        metrics=(),
        device="cpu",
        ops="ref",
        resume=True,
    )
    every = job_spec(songset, {"kind": "train", "line": None, "options": {}})
    assert "--all" in every.argv and every.title == "train every line"


def test_preview_and_export_write_into_the_set(songset) -> None:
    preview = job_spec(
        songset, {"kind": "preview", "line": 1, "options": {"size": 64, "seconds": 1.5}}
    )
    assert preview.argv[4:] == ("--size", "64", "--device", "auto", "--seconds", "1.5")
    assert preview.results == ("preview/line-01.mp4", "preview/line-01-keyframes.png")
    part = job_spec(
        songset, {"kind": "render", "options": {"start": 1, "end": 6, "size": 64, "fps": 12}}
    )
    out = str(songset.root / "renders" / "song-1-6s.mp4")
    assert part.argv == (
        "render",
        str(songset.root),
        "-o",
        out,
        "--start",
        "1",
        "--end",
        "6",
        "--size",
        "64",
        "--fps",
        "12",
        "--device",
        "auto",
    )
    whole = job_spec(songset, {"kind": "render", "options": {}})
    assert whole.results == ("renders/song.mp4",) and "--end" not in whole.argv


@pytest.mark.parametrize(
    ("request_", "error"),
    [
        ({"kind": "collect", "options": {}}, "collect: choose a line"),
        ({"kind": "collect", "line": 4}, "line: expected a whole number in 1..3, got 4"),
        ({"kind": "cluster", "line": 1, "options": {"k": "ten"}}, "k: expected a whole number"),
        ({"kind": "train", "line": 1, "options": {"kimg": -1}}, "kimg: expected a number in 0.001"),
        (
            {"kind": "train", "line": 1, "options": {"device": "tpu"}},
            "device: expected one of auto, cpu, cuda",
        ),
        (
            {"kind": "render", "options": {"start": 5, "end": 2}},
            "end: expected a time after the start",
        ),
        ({"kind": "preview", "line": 1, "options": []}, "options: expected a JSON object"),
    ],
)
def test_bad_job_requests_say_which_option(songset, request_, error) -> None:
    with pytest.raises(BadRequest, match=re.escape(error)):
        job_spec(songset, request_)


def test_the_trainers_own_checks_come_through(songset) -> None:
    with pytest.raises(LyriscopeError, match="--aug fixed needs --p P"):
        job_spec(songset, {"kind": "train", "line": 1, "options": {"aug": "fixed"}})
