"""The demo set: its procedural pictures (deterministic, one clear kind per line) and its set.toml."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lyriscope.audiofile import audio_duration
from lyriscope.commands.new import create_set
from lyriscope.dataset_tools.features import descriptor
from lyriscope.setmodel import load_set
from lyriscope.timeline import Timeline

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "sets" / "demo"
LYRICS = (
    "I'm the first ray of light",
    "Over a calm horizon",
    "Seeds become circles",
    "And the fire flows on",
)
LINE_STARTS = (4.0, 12.0, 20.0, 28.0)  # seconds, as scripts/demo_song.py places them


def _script(name: str):
    module_name = f"lyriscope_scripts_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def images():
    return _script("demo_images")


@pytest.fixture(scope="module")
def line_features(images) -> list[np.ndarray]:
    """Descriptor [n, 206] of each line's first pictures, as `lyriscope cluster` sees them."""
    count, size = 16, 96
    return [
        np.stack(
            [
                descriptor(Image.fromarray(images.line_image(line, i, size=size)))
                for i in range(count)
            ]
        )
        for line in range(4)
    ]


@pytest.mark.parametrize("line", range(4))
def test_pictures_are_a_function_of_seed_line_and_index(images, line):
    first = images.line_image(line, 3, size=64, seed=5)
    assert first.shape == (64, 64, 3) and first.dtype == np.uint8
    np.testing.assert_array_equal(first, images.line_image(line, 3, size=64, seed=5))
    for other in (
        images.line_image(line, 4, size=64, seed=5),
        images.line_image(line, 3, size=64, seed=6),
    ):
        assert np.abs(first.astype(int) - other.astype(int)).mean() > 5  # visibly different


def test_written_files_are_identical_across_runs_and_worker_counts(images, tmp_path):
    one = images.write_line_images(tmp_path / "a", 1, count=3, size=48)
    two = images.write_line_images(tmp_path / "b", 1, count=3, size=48, workers=2)
    assert [p.name for p in one] == ["img-0000.png", "img-0001.png", "img-0002.png"]
    assert [p.read_bytes() for p in one] == [p.read_bytes() for p in two]
    assert not list((tmp_path / "a").rglob("*.part"))


def test_pictures_use_the_full_range_and_are_not_flat(images):
    for line in range(4):
        for index in range(6):
            img = images.line_image(line, index, size=64).astype(float)
            assert img.std() > 12, f"line {line + 1} picture {index} is nearly flat"
            assert img.max() - img.min() > 100


def test_each_line_is_recognisable_from_the_others(line_features):
    centroids = np.stack([f.mean(axis=0) for f in line_features])  # [4, 206]
    pictures = np.concatenate(line_features)  # [4 * n, 206]
    truth = np.repeat(np.arange(4), len(line_features[0]))
    nearest = np.linalg.norm(pictures[:, None] - centroids[None], axis=2).argmin(axis=1)
    # Nearest centroid of the clustering's own descriptor: pictures fall to their own line.
    assert (nearest == truth).mean() >= 0.9
    for line, feats in enumerate(line_features):
        assert (nearest[truth == line] == line).mean() >= 0.75, (
            f"line {line + 1} looks like another"
        )
        # Two pictures of one line are closer, on average, than one of it and one of another.
        within = _mean_distance(feats, feats, same=True)
        for other in set(range(4)) - {line}:
            between = _mean_distance(feats, line_features[other])
            assert within < between, f"lines {line + 1} and {other + 1} overlap"


def _mean_distance(a: np.ndarray, b: np.ndarray, *, same: bool = False) -> float:
    d = np.linalg.norm(a[:, None] - b[None], axis=2)  # [len(a), len(b)]
    return float(d[~np.eye(len(a), dtype=bool)].mean() if same else d.mean())


def test_committed_set_loads_and_its_lyrics_map_onto_its_four_lines():
    songset = load_set(DEMO)
    assert [line.text for line in songset.lines] == list(LYRICS)
    assert songset.output.size == 512 and songset.output.fps == 30
    assert [str(line.model.relative_to(DEMO)) for line in songset.lines] == [
        f"models/line-{i:02d}.safetensors" for i in range(1, 5)
    ]
    assert all(len(line.queries) >= 2 for line in songset.lines)
    assert songset.song.audio.stat().st_size <= 2 * 2**20
    duration = audio_duration(songset.song.audio)
    assert 30 <= duration <= 45
    timeline = Timeline.from_set(songset, duration=duration)
    assert timeline.at(1.0).line is None  # the instrumental intro
    for line, start in enumerate(LINE_STARTS):
        cue = timeline.at(start + 0.5)
        assert cue.line == line
        assert cue.start == pytest.approx(start)
    assert timeline.frame_count(songset.output.fps) == round(duration * 30)
    # Every word is timed (enhanced LRC), inside its line's span, and a closing stamp ends it.
    for sung, line in zip(timeline.sung, songset.lines, strict=True):
        assert [w.text for w in sung.words] == [*line.text.split(), ""]
        assert sung.start == sung.words[0].start and sung.words[-1].start < sung.end
    assert songset.post.text and songset.post.style.karaoke == "fill"


def test_committed_song_is_what_the_synthesizer_writes(tmp_path):
    build = _script("build_demo")
    build.write_song(tmp_path)
    assert (tmp_path / "song.wav").read_bytes() == (DEMO / "song.wav").read_bytes()
    assert (tmp_path / "song.lrc").read_text() == (DEMO / "song.lrc").read_text()


def test_build_script_edits_a_fresh_set_toml_into_a_valid_demo(tmp_path):
    build = _script("build_demo")
    song = tmp_path / "song"
    build.write_song(song)
    root = create_set(
        "demo", audio=song / "song.wav", lyrics=song / "song.lrc", sets_dir=tmp_path / "sets"
    )
    path = root / "set.toml"
    path.write_text(build.demo_toml(path.read_text(encoding="utf-8")), encoding="utf-8")
    songset = load_set(root)
    assert songset.output.size == 512 and songset.post.vignette == pytest.approx(0.3)
    assert [list(line.queries) for line in songset.lines] == [list(q) for q in build.LINE_QUERIES]
    assert songset.midi.notes[36] == "line:next" and songset.midi.cc[1] == "pulse"
    assert songset.lines[3].walk.pulse == pytest.approx(0.7)


def test_build_script_takes_the_pictures_through_collect_cluster_prepare(tmp_path):
    import json
    import subprocess
    import zipfile

    set_dir = tmp_path / "sets" / "demo"
    command = [
        sys.executable,
        str(REPO / "scripts" / "build_demo.py"),
        "--set",
        str(set_dir),
        "--count",
        "6",
        "--size",
        "64",
        "--k",
        "2",
        "--model-size",
        "32",
        "--workers",
        "1",
    ]
    first = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr[-2000:]
    assert [line.text for line in load_set(set_dir).lines] == list(LYRICS)
    means = []
    for line in range(1, 5):
        with zipfile.ZipFile(set_dir / "data" / f"line-{line:02d}.zip") as zf:
            pngs = sorted(n for n in zf.namelist() if n.endswith(".png"))
            assert json.loads(zf.read("dataset.json")) == {"labels": None}
            pictures = [np.asarray(Image.open(zf.open(n))) for n in pngs]
        assert len(pictures) == 6 and all(p.shape == (32, 32, 3) for p in pictures)
        means.append(np.mean(pictures, axis=(0, 1, 2)))  # mean RGB of the line's dataset
    red, green, blue = means[3]
    assert red > green > blue  # the fire line's dataset is fire-coloured
    # A second run changes nothing: pictures are kept and collect skips what it stored.
    second = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr[-2000:]
    assert second.stdout.count("pictures already in") == 4
    assert second.stdout.count("stored 0 new images, skipped 6 known URLs") == 4
