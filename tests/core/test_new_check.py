"""`lyriscope new` writes a loadable, self-contained set; `lyriscope check` reports on it."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
import tomllib
import types
from pathlib import Path

import numpy as np
import pytest
import soundfile

from lyriscope.cli import main
from lyriscope.commands.check import check_set
from lyriscope.commands.new import create_set, set_toml
from lyriscope.errors import AudioError
from lyriscope.lrc import LrcLine, Lyrics
from lyriscope.setmodel import Midi, Output, Post, TextStyle, WalkParams, load_set

LRC = """[ti:First Light]
[ar:Tester]
[00:00.00]
[00:00.50]I'm the "first" ray of light
[00:01.50]Back\\slash\tand tab
[00:02.50]
[00:03.00]Últimas palabras
"""
# The reader folds runs of whitespace (the tab) into one space.
LYRIC_TEXTS = ['I\'m the "first" ray of light', "Back\\slash and tab", "Últimas palabras"]
SR = 8000
SECONDS = 4.0


@pytest.fixture
def sources(tmp_path: Path) -> tuple[Path, Path]:
    """A 4 s sine WAV and an LRC with three lyric lines (quotes, a backslash, a tab, accents)."""
    audio = tmp_path / "in" / "track.wav"
    audio.parent.mkdir()
    t = np.arange(int(SR * SECONDS)) / SR
    soundfile.write(audio, 0.3 * np.sin(2 * np.pi * 220 * t), SR)
    lyrics = tmp_path / "in" / "words.lrc"
    lyrics.write_text(LRC, encoding="utf-8")
    return audio, lyrics


@pytest.fixture(autouse=True)
def audio_module(monkeypatch):
    """The real lyriscope.audiofile when present, else a stand-in with its contract."""
    if importlib.util.find_spec("lyriscope.audiofile") is None:
        stand_in = types.ModuleType("lyriscope.audiofile")

        def audio_duration(path) -> float:
            try:
                info = soundfile.info(str(path))
            except RuntimeError as exc:
                raise AudioError(f"audio file {path} cannot be decoded: {exc}") from None
            return info.frames / info.samplerate

        stand_in.audio_duration = audio_duration
        monkeypatch.setitem(sys.modules, "lyriscope.audiofile", stand_in)


def model_reader(monkeypatch, read) -> None:
    """Put a stand-in lyriscope.trainers.checkpoint with `read` as its model readers."""
    stand_in = types.ModuleType("lyriscope.trainers.checkpoint")
    stand_in.read_model_config = read
    stand_in.check_model_file = read
    monkeypatch.setitem(sys.modules, "lyriscope.trainers.checkpoint", stand_in)


def json_config(path) -> dict:
    return json.loads(Path(path).read_text())


def new(tmp_path, sources, *extra: str) -> int:
    audio, lyrics = sources
    return main(
        [
            "new",
            "song",
            "--audio",
            str(audio),
            "--lyrics",
            str(lyrics),
            "--sets-dir",
            str(tmp_path / "sets"),
            *extra,
        ]
    )


# --- new -----------------------------------------------------------------------------------


def test_new_writes_a_self_contained_set_that_loads(tmp_path, sources, capsys):
    assert new(tmp_path, sources) == 0
    root = tmp_path / "sets" / "song"
    assert "lyriscope check" in capsys.readouterr().out
    assert (root / "track.wav").read_bytes() == sources[0].read_bytes()
    assert (root / "words.lrc").read_bytes() == sources[1].read_bytes()
    assert not list(root.glob(".*.part"))  # atomic writes leave no temp files
    s = load_set(root)
    assert s.song.title == "First Light" and s.song.artist == "Tester"
    assert s.song.audio == (root / "track.wav").resolve()
    assert [line.text for line in s.lines] == LYRIC_TEXTS
    assert [line.queries for line in s.lines] == [(t,) for t in LYRIC_TEXTS]
    assert all(line.tags == ("photography", "art", "painting") for line in s.lines)
    assert [line.model for line in s.lines] == [
        (root / f"models/line-{i:02d}.safetensors").resolve() for i in (1, 2, 3)
    ]
    assert s.walk == WalkParams()
    assert s.midi != Midi() and s.midi.cc[1] == "pulse"


def test_new_writes_every_default_out_with_a_comment(tmp_path, sources):
    new(tmp_path, sources)
    text = (tmp_path / "sets" / "song" / "set.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    assert set(data["walk"]) == set(WalkParams.__dataclass_fields__)
    assert set(data["output"]) == set(Output.__dataclass_fields__) - {"gap"}
    assert "# gap = 1" in text  # unset means "keep the previous line", so only shown
    assert "truncation = 0.7  # psi" in text
    commented = {
        line[2:].split(" = ")[0]
        for line in text.splitlines()
        if line.startswith("# ") and " = " in line
    }
    post_keys = set(Post.__dataclass_fields__) - {"text", "style"}
    style_keys = {f"text_{name}" for name in TextStyle.__dataclass_fields__}
    assert commented >= post_keys | style_keys  # the post chain's keys shown, commented out
    assert data["post"] == {"text": True}  # a lyric video's first render has its lyrics


def test_set_toml_escapes_what_toml_must_escape():
    odd = 'quote " backslash \\ tab \t bell \x07 del \x7f é 🎵'
    lyrics = Lyrics(lines=(LrcLine(start=1.25, text=odd, source_line=1),))
    data = tomllib.loads(set_toml(lyrics, audio_name="a.wav", lyrics_name="a.lrc", title=odd))
    assert data["song"]["title"] == odd
    assert data["line"][0]["text"] == odd and data["line"][0]["queries"] == [odd]


def test_new_without_ti_tag_uses_the_set_name(tmp_path, sources):
    sources[1].write_text("[00:01.00]Only line\n", encoding="utf-8")
    assert new(tmp_path, sources) == 0
    assert load_set(tmp_path / "sets" / "song").song.title == "song"


def test_new_refuses_an_existing_set_and_force_keeps_models(tmp_path, sources, capsys):
    assert new(tmp_path, sources) == 0
    toml = tmp_path / "sets" / "song" / "set.toml"
    toml.write_text("edited", encoding="utf-8")
    capsys.readouterr()
    assert new(tmp_path, sources) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already exists" in err and "--force" in err
    assert toml.read_text() == "edited"
    model = tmp_path / "sets" / "song" / "models" / "line-01.safetensors"
    model.parent.mkdir()
    model.write_bytes(b"weights")
    assert new(tmp_path, sources, "--force") == 0
    load_set(toml.parent)
    assert model.read_bytes() == b"weights"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "../escape"}, "set name '../escape'"),
        ({"audio": "missing.wav"}, "--audio .*missing.wav: no such file"),
        ({"audio": "words.lrc"}, "expected a .wav, .flac, .mp3, .ogg file"),
        ({"lrc": "[ti:x]\n[00:01.00]\n"}, "has no lyric lines"),
        (
            {"lrc": "[00:01.00]ok\nplain text\n"},
            r"words\.lrc: line 2: text 'plain text' has no time stamp",
        ),
    ],
)
def test_new_bad_input_is_one_sentence_and_exit_2(tmp_path, sources, capsys, change, message):
    audio, lyrics = sources
    if "lrc" in change:
        lyrics.write_text(change["lrc"], encoding="utf-8")
    audio_arg = str(audio.parent / change.get("audio", audio.name))
    code = main(
        [
            "new",
            change.get("name", "song"),
            "--audio",
            audio_arg,
            "--lyrics",
            str(lyrics),
            "--sets-dir",
            str(tmp_path / "sets"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("lyriscope new: ") and err.count("\n") == 1
    assert re.search(message, err)
    assert not (tmp_path / "sets" / "song").exists()


def test_create_set_returns_the_folder(tmp_path, sources):
    root = create_set("s2", audio=sources[0], lyrics=sources[1], sets_dir=tmp_path)
    assert root == tmp_path / "s2" and (root / "set.toml").is_file()


# --- check ---------------------------------------------------------------------------------


@pytest.fixture
def made_set(tmp_path, sources) -> Path:
    assert new(tmp_path, sources) == 0
    return tmp_path / "sets" / "song"


def test_check_reports_title_duration_lines_and_missing_models(made_set, capsys):
    capsys.readouterr()
    assert main(["check", str(made_set)]) == 0
    out = capsys.readouterr().out
    info = soundfile.info(str(made_set / "track.wav"))
    assert f"{info.frames / info.samplerate:.3f} s" in out
    assert "First Light - Tester" in out
    for number, stamp in ((1, "00:00.50"), (2, "00:01.50"), (3, "00:03.00")):
        assert re.search(rf"^\s+{number}\s+{stamp}\s", out, flags=re.M)
    assert "0 of 3 found" in out
    assert "no model yet for lines 1, 2, 3" in out


def test_check_need_models_fails_on_the_first_missing_model(made_set, capsys):
    assert main(["check", str(made_set), "--need-models"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "[[line]] 1" in err and "line-01.safetensors does not exist" in err


def test_check_undecodable_audio_is_exit_2_naming_the_file(made_set, capsys):
    (made_set / "track.wav").write_bytes(b"RIFF....not audio at all" * 10)
    assert main(["check", str(made_set)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lyriscope check: ") and "track.wav" in err and err.count("\n") == 1


def test_check_line_count_mismatch_is_exit_2(made_set, capsys):
    toml = made_set / "set.toml"
    text = toml.read_text(encoding="utf-8")
    toml.write_text(
        text[: text.rindex("[[line]]")] + text[text.index("[midi]") :], encoding="utf-8"
    )
    assert main(["check", str(made_set)]) == 2
    err = capsys.readouterr().err
    assert "has 3 lyric lines but set.toml has 2 [[line]] entries" in err


def test_check_malformed_lrc_names_its_line(made_set, capsys):
    with open(made_set / "words.lrc", "a", encoding="utf-8") as f:
        f.write("[00:03.50]fine\n[0x:00]broken\n")
    assert main(["check", str(made_set)]) == 2
    assert "words.lrc: line 9: time stamp [0x:00] does not parse" in capsys.readouterr().err


def test_check_missing_set_is_exit_2(tmp_path, capsys):
    assert main(["check", str(tmp_path / "nothing")]) == 2
    assert "no such set file" in capsys.readouterr().err


def test_check_reads_model_resolution_and_warns_on_upscaling(made_set, monkeypatch):
    model_reader(monkeypatch, json_config)
    models = made_set / "models"
    models.mkdir()
    for i in (1, 2, 3):
        (models / f"line-{i:02d}.safetensors").write_text(json.dumps({"img_resolution": 64}))
    report = check_set(made_set)
    assert [m.resolution for m in report.models] == [64, 64, 64]
    assert "3 of 3 found" in report.text() and "64x64" in report.text()
    upscaled = [w for w in report.warnings if "upscaled" in w]
    assert upscaled == ["lines 1, 2, 3: their models are 64x64, upscaled to the output's 1024"]
    assert not any("no model yet" in w for w in report.warnings)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"img_resolution": 100},
            r"line-02\.safetensors \(line 2\): img_resolution is 100; expected a power of two",
        ),
        ({"z_dim": 512}, r"img_resolution is None"),
        ("not json", r"line-02\.safetensors: cannot be read as a model \(JSONDecodeError"),
    ],
)
def test_check_model_of_the_wrong_shape_is_exit_2(made_set, monkeypatch, capsys, config, message):
    model_reader(monkeypatch, json_config)
    (made_set / "models").mkdir()
    (made_set / "models" / "line-02.safetensors").write_text(
        config if isinstance(config, str) else json.dumps(config)
    )
    assert main(["check", str(made_set)]) == 2
    assert re.search(message, capsys.readouterr().err)


def test_check_warns_when_set_text_and_lrc_text_differ(made_set):
    toml = made_set / "set.toml"
    toml.write_text(
        toml.read_text(encoding="utf-8").replace(
            'text = "Últimas palabras"', 'text = "Something else"'
        ),
        encoding="utf-8",
    )
    warnings = check_set(made_set).warnings
    assert any(
        w.startswith("line 3: set.toml text 'Something else' differs from LRC line 7")
        for w in warnings
    )


def test_check_line_after_the_audio_end_is_exit_2(made_set, capsys):
    toml = made_set / "set.toml"
    toml.write_text(
        toml.read_text(encoding="utf-8").replace("# at = 3.0", "at = 9.0"), encoding="utf-8"
    )
    assert main(["check", str(made_set)]) == 2
    assert "line 3 (start given as 9.0) starts at 9.000 s, outside the song (0 to 4.000 s)" in (
        capsys.readouterr().err
    )


def test_check_reads_a_real_model_written_by_init_model(made_set, capsys):
    model = made_set / "models" / "line-01.safetensors"
    assert (
        main(
            [
                "init-model",
                "--size",
                "32",
                "--channel-base",
                "256",
                "--channel-max",
                "8",
                "--mapping-layers",
                "1",
                "-o",
                str(model),
            ]
        )
        == 0
    )
    report = check_set(made_set)
    assert report.models[0].found and report.models[0].resolution == 32
    assert "1 of 3 found" in report.text()


def test_new_with_a_pipe_for_lyrics_refuses_at_once_and_makes_no_folder(tmp_path, sources, capsys):
    audio, _ = sources
    fifo = tmp_path / "lyrics.lrc"
    os.mkfifo(fifo)
    code = main(
        [
            "new",
            "song",
            "--audio",
            str(audio),
            "--lyrics",
            str(fifo),
            "--sets-dir",
            str(tmp_path / "sets"),
        ]
    )
    assert code == 2 and "is not a regular file" in capsys.readouterr().err
    assert not (tmp_path / "sets").exists()


# --- check: the song's conditional model ---------------------------------------------------


def on_song_model(made_set: Path, *, classes: int | None, extra: str = "") -> None:
    """Draw every line with [song] model (a JSON stand-in config of `classes`; None: no file)."""
    toml = made_set / "set.toml"
    text = re.sub(r'^model = "models/line-0\d\.safetensors".*\n', "", toml.read_text(), flags=re.M)
    text = text.replace("[song]\n", '[song]\nmodel = "models/song.safetensors"\n', 1)
    toml.write_text(text + extra, encoding="utf-8")
    if classes is not None:
        (made_set / "models").mkdir(exist_ok=True)
        config = {"img_resolution": 64, "c_dim": classes}
        (made_set / "models" / "song.safetensors").write_text(json.dumps(config))


def test_check_reports_the_song_model_once_with_each_lines_class(made_set, monkeypatch):
    model_reader(monkeypatch, json_config)
    on_song_model(made_set, classes=3)
    report = check_set(made_set, need_models=True)
    text = report.text()
    assert text.count("models/song.safetensors") == 1
    assert "song      models/song.safetensors, 64x64, 3 classes" in text
    assert [m.label for m in report.models] == [0, 1, 2] and "song model, class 2" in text
    assert "3 of 3 found" in text


@pytest.mark.parametrize(
    ("classes", "message"),
    [
        (0, r"\[song\] model models/song\.safetensors is not class-conditional \(c_dim 0\)"),
        (2, r"\[\[line\]\] 3 \('Últimas palabras'\): class 2, but \[song\] model "),
    ],
)
def test_check_a_song_model_that_cannot_draw_every_line_is_exit_2(
    made_set, monkeypatch, capsys, classes, message
):
    model_reader(monkeypatch, json_config)
    on_song_model(made_set, classes=classes)
    assert main(["check", str(made_set)]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err) and err.count("\n") == 1, err


def test_check_a_missing_song_model_is_a_warning_and_an_error_with_need_models(made_set, capsys):
    on_song_model(made_set, classes=None)
    warnings = check_set(made_set).warnings
    assert any(
        w.startswith("no song model yet (models/song.safetensors) for lines 1, 2, 3")
        for w in warnings
    )
    assert main(["check", str(made_set), "--need-models"]) == 2
    err = capsys.readouterr().err
    assert "[song] model: file" in err and "--conditional" in err and err.count("\n") == 1


def _disk_full_on(nth: int, monkeypatch) -> None:
    """Make the nth file copy of `lyriscope new` fail as a full disk does."""
    import errno
    import shutil

    import lyriscope.commands.new as new_module

    calls = []
    original = shutil.copyfile

    def copyfile(src, dst):
        calls.append(src)
        if len(calls) == nth:
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        return original(src, dst)

    monkeypatch.setattr(new_module.shutil, "copyfile", copyfile)


def test_new_that_fails_half_way_leaves_no_set_folder(tmp_path, sources, capsys, monkeypatch):
    _disk_full_on(2, monkeypatch)  # the audio is copied, the lyrics are not
    assert new(tmp_path, sources) == 1
    assert "the disk is full" in capsys.readouterr().err
    assert list((tmp_path / "sets").iterdir()) == []  # no set, no temporary folder


def test_new_force_that_fails_half_way_keeps_the_old_set(tmp_path, sources, capsys, monkeypatch):
    assert new(tmp_path, sources) == 0
    root = tmp_path / "sets" / "song"
    (root / "models").mkdir()
    (root / "models" / "line-01.safetensors").write_bytes(b"weights")
    before = {p.name: p.read_bytes() for p in root.iterdir() if p.is_file()}
    audio, _ = sources
    audio.write_bytes(audio.read_bytes()[:-400])  # a new take of the song
    _disk_full_on(2, monkeypatch)
    assert new(tmp_path, sources, "--force") == 1
    assert {p.name: p.read_bytes() for p in root.iterdir() if p.is_file()} == before
    assert sorted(p.name for p in root.iterdir()) == sorted([*before, "models"])
    assert (root / "models" / "line-01.safetensors").read_bytes() == b"weights"
