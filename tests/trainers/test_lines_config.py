"""TrainLinesConfig and `lyriscope train`'s arguments: every option survives config -> args -> config."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest

from lyriscope.errors import LyriscopeError
from lyriscope.trainers.commands.train import config_from_args, configure
from lyriscope.trainers.lines_config import (
    TrainLinesConfig,
    metrics_from_text,
    option_arguments,
    train_arguments,
)

# Every field away from its default, so an option that an argument list forgets shows.
CHANGED = TrainLinesConfig(
    set_path=Path("sets/song"),
    line=3,
    data=Path("data/other.zip"),
    output=Path("models/other.safetensors"),
    kimg=123.5,
    batch=8,
    gamma=0.25,
    aug="fixed",
    target=0.7,
    p=0.3,
    mirror=True,
    base=Path("base-16.pkl"),
    freezed=2,
    snap=7,
    tick_kimg=0.5,
    resume=True,
    gpus=2,
    outdir=Path("elsewhere/runs"),
    seed=5,
    workers=0,
    metrics=("kid", "fid"),
    metrics_gen=64,
    inception=Path("pt_inception.pth"),
    cfg="tiny",
    channel_base=256,
    channel_max=16,
    mapping_layers=3,
    device="cpu",
    ops="ref",
)


def parse(argv: list[str]) -> TrainLinesConfig:
    parser = argparse.ArgumentParser()
    configure(parser)
    return config_from_args(parser.parse_args(argv))


def test_the_changed_config_changes_every_field():
    # A new field must be added to CHANGED, or the round trips below would not test it.
    # (--all and --conditional exclude --line: the round trips below change them instead.)
    same = [
        f.name
        for f in dataclasses.fields(TrainLinesConfig)
        if f.name not in ("all_lines", "conditional") and getattr(CHANGED, f.name) == f.default
    ]
    assert same == []


@pytest.mark.parametrize(
    "config",
    [
        CHANGED,
        dataclasses.replace(CHANGED, line=None, all_lines=True, data=None, output=None),
        dataclasses.replace(CHANGED, line=None, conditional=True),
        dataclasses.replace(CHANGED, metrics=(), aug="none", p=None),
        TrainLinesConfig(set_path=Path("sets/song")),
        TrainLinesConfig(set_path=Path("sets/my song/set.toml"), line=1),
    ],
    ids=["every-option", "all-lines", "conditional", "no-metrics", "defaults", "set-toml"],
)
def test_every_option_survives_the_round_trip(config: TrainLinesConfig):
    assert parse(train_arguments(config)) == config


def test_the_commands_defaults_are_the_configs():
    assert parse(["sets/song"]) == TrainLinesConfig(set_path=Path("sets/song"))


def test_options_leave_out_the_set_and_the_line_choice():
    args = option_arguments(dataclasses.replace(CHANGED, line=None, conditional=True))
    assert "sets/song" not in args and "--line" not in args and "--all" not in args
    assert "--conditional" not in args
    assert parse(["sets/song", "--line", "3", *args]) == CHANGED


@pytest.mark.parametrize(
    ("text", "names"),
    [("kid", ("kid",)), ("KID, fid", ("kid", "fid")), ("none", ()), ("None", ())],
)
def test_metrics_from_text(text: str, names: tuple[str, ...]):
    assert metrics_from_text(text) == names


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        (dict(line=1, all_lines=True), "choose one"),
        (
            dict(line=2, conditional=True),
            "--conditional trains one model for every line; leave out --line 2",
        ),
        (dict(all_lines=True, conditional=True), "leave out --all"),
        (dict(all_lines=True, output=Path("m.safetensors")), "--output names one model file"),
        (dict(aug="fixed"), "needs --p"),
        (dict(aug="always"), "choose one of ada, fixed, none"),
        (dict(metrics=("is",)), "choose from kid, fid"),
        (dict(ops="fast"), "choose one of cuda, ref"),
    ],
)
def test_a_config_that_cannot_train_is_refused(changes: dict, match: str):
    with pytest.raises(LyriscopeError, match=match):
        TrainLinesConfig(set_path=Path("s"), **changes)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("--cbase", "--channel-base"),
        ("--cmax", "--channel-max"),
        ("--map-depth", "--mapping-layers"),
    ],
)
def test_old_spellings_of_the_network_options_still_work_and_say_so(old, new, capsys):
    config = parse(["sets/song", "--line", "1", old, "64"])
    field = new.removeprefix("--").replace("-", "_")
    assert getattr(config, field) == 64
    assert f"{old} is now {new} (the old spelling still works)" in capsys.readouterr().err
    assert parse(["sets/song", "--line", "1", new, "64"]) == config
    assert capsys.readouterr().err == ""


def test_an_unknown_preset_is_refused_naming_the_presets():
    with pytest.raises(LyriscopeError, match=r"--cfg 'huge': choose one of auto, tiny, small"):
        dataclasses.replace(CHANGED, cfg="huge")
