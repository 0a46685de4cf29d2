"""Hot reload: set.toml and shader edits apply without a restart; broken ones keep the last good."""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from setfiles import set_toml, write_model, write_set

from lyriscope.engine.file_watch import FileWatcher, watch
from lyriscope.engine.gl.renderer import DEFAULT_CHAIN, Renderer, copy_shaders
from lyriscope.engine.show.controls import LiveControls
from lyriscope.engine.show.hot_reload import HotReload, incompatible
from lyriscope.engine.show.hud import HudOverlay
from lyriscope.engine.show.live import LiveShow
from lyriscope.engine.synth.runtime import Generator
from lyriscope.setmodel import load_set

DURATION_S = 2.0


MODEL = "models/line-01.safetensors"  # a link, in each test's set, to the shared model


def reload_set(*, post: str = "vignette = 0.0") -> dict:
    """The set.toml tables of these tests: one line on the shared model, post as given (TOML)."""
    return {
        "lines": ({"text": "only line", "model": MODEL},),
        "output": {"size": 64, "fps": 10},
        "walk": {"loop_seconds": 4.0, "seeds": 3},
        "post": post,
    }


def linked_set(root: Path, model: Path, *, post: str = "vignette = 0.0") -> Path:
    """A set whose one line draws with `model`, linked in (set.toml paths stay in the set)."""
    write_set(root, **reload_set(post=post))
    (root / "models").mkdir()
    (root / MODEL).symlink_to(model)
    return root


RED_CROSSFADE = """#version 330 core
out vec4 f_color;
void main() { f_color = vec4(1.0, 0.0, 0.0, 1.0); }
"""


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return write_model(tmp_path_factory.mktemp("models") / "line-01.safetensors", seed=3)


def edit_set(root: Path, *, post: str) -> None:
    """Rewrite set.toml and make sure its stamp changes (coarse file system clocks)."""
    path = root / "set.toml"
    before = path.stat().st_mtime_ns
    path.write_text(set_toml(**reload_set(post=post)), encoding="utf-8")
    bump(path, before)


def bump(path: Path, before_ns: int) -> None:
    if path.stat().st_mtime_ns <= before_ns:
        os.utime(path, ns=(before_ns + 1_000_000, before_ns + 1_000_000))


class Ticks:
    """A monotonic clock the test moves by hand (for the poll interval)."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


# --- watching files ------------------------------------------------------------------------


def test_file_watcher_reports_each_change_once(tmp_path):
    a, b = tmp_path / "a.glsl", tmp_path / "b.glsl"
    a.write_text("x")
    watcher = FileWatcher([a, b])  # b does not exist yet
    assert watcher.changed() == []
    before = a.stat().st_mtime_ns
    a.write_text("y")
    bump(a, before)
    assert watcher.changed() == [a]
    assert watcher.changed() == []
    b.write_text("new")
    assert watcher.changed() == [b]
    a.unlink()
    assert watcher.changed() == [a]  # gone counts too (an editor mid-save)


def test_watch_calls_back_once_per_save_even_when_the_editor_replaces_the_file(tmp_path):
    path = tmp_path / "set.toml"
    path.write_text("a")
    calls: list[str] = []

    def replace() -> None:  # an editor that removes the file, then writes the new one
        before = path.stat().st_mtime_ns
        path.unlink()
        time.sleep(0.15)
        path.write_text("b")
        bump(path, before)

    threading.Timer(0.05, replace).start()
    watch(path, lambda: calls.append(path.read_text()), poll_s=0.02, stop_after_s=0.6)
    assert calls == ["b"]


def test_poll_looks_at_files_only_every_poll_s(tmp_path, model):
    root = linked_set(tmp_path / "s", model)
    ticks = Ticks()
    reloader = HotReload(load_set(root), poll_s=0.25, clock=ticks)
    edit_set(root, post="vignette = 0.5")
    ticks.t = 0.1
    assert not reloader.poll().changed  # too early: the file is not even looked at
    ticks.t = 0.3
    change = reloader.poll()
    assert change.songset is not None and change.songset.post.vignette == 0.5
    ticks.t = 0.6
    assert not reloader.poll().changed  # reported once


def test_broken_set_toml_keeps_the_previous_set_and_says_where(tmp_path, model):
    root = linked_set(tmp_path / "s", model, post="vignette = 0.2")
    ticks = Ticks()
    reloader = HotReload(load_set(root), poll_s=0.25, clock=ticks)
    before = (root / "set.toml").stat().st_mtime_ns
    (root / "set.toml").write_text((root / "set.toml").read_text().replace("vignette", "vignete"))
    bump(root / "set.toml", before)
    ticks.t = 1.0
    change = reloader.poll()
    assert change.songset is None
    assert len(change.errors) == 1
    assert "set.toml" in change.errors[0] and "vignete" in change.errors[0]
    assert "kept the previous set" in change.errors[0]
    assert reloader.songset.post.vignette == 0.2
    edit_set(root, post="vignette = 0.7")  # fixed: the next poll takes it
    ticks.t = 2.0
    assert reloader.poll().songset.post.vignette == 0.7


def test_new_lines_or_models_need_a_restart(tmp_path, model):
    old = load_set(linked_set(tmp_path / "a", model))
    other = model.parent / "other.safetensors"
    other.write_bytes(model.read_bytes())
    new = load_set(linked_set(tmp_path / "b", other))
    assert re.search(r"line 1's model changed; restart the show", incompatible(old, new))
    assert incompatible(old, old) is None


def test_a_new_class_for_a_line_of_the_song_model_needs_a_restart(tmp_path, model):
    song = {"model": MODEL}
    old = load_set(write_set(tmp_path, lines=("x", "y"), song=song))
    new = load_set(write_set(tmp_path, lines=("x", {"text": "y", "class": 0}), song=song))
    assert re.search(r"line 2's class in the song's model changed", incompatible(old, new))


# --- shaders -------------------------------------------------------------------------------


def grey(size: int = 32) -> np.ndarray:
    return np.full((size, size, 3), 100, np.uint8)


def test_shader_edit_changes_the_next_frame_and_a_broken_one_keeps_the_last_good(tmp_path, model):
    shaders = copy_shaders(tmp_path / "shaders")
    songset = load_set(linked_set(tmp_path / "s", model))
    ticks = Ticks()
    reloader = HotReload(songset, shader_dir=shaders, poll_s=0.25, clock=ticks)
    with Renderer.offscreen(32, post=songset.post, shader_dir=shaders) as renderer:
        renderer.render(grey())
        assert tuple(renderer.read()[16, 16]) == (100, 100, 100)

        before = (shaders / "crossfade.frag.glsl").stat().st_mtime_ns
        (shaders / "crossfade.frag.glsl").write_text(RED_CROSSFADE)
        bump(shaders / "crossfade.frag.glsl", before)
        ticks.t = 1.0
        change = reloader.poll(renderer)
        assert change.shaders and change.errors == ()
        renderer.render(grey())
        assert tuple(renderer.read()[16, 16]) == (255, 0, 0)

        before = (shaders / "crossfade.frag.glsl").stat().st_mtime_ns
        (shaders / "crossfade.frag.glsl").write_text(
            RED_CROSSFADE.replace("f_color =", "f_color = oops")
        )
        bump(shaders / "crossfade.frag.glsl", before)
        ticks.t = 2.0
        change = reloader.poll(renderer)
        assert len(change.errors) == 1
        assert "crossfade.frag.glsl does not compile" in change.errors[0]
        renderer.render(grey())
        assert tuple(renderer.read()[16, 16]) == (255, 0, 0)  # the last good program


# --- in the show ---------------------------------------------------------------------------


class StillClock:
    playing = False
    status = "clock: still (test)"

    def now(self) -> float:
        return 0.5

    def toggle(self) -> None: ...

    def seek(self, t: float) -> None: ...

    def messages(self) -> list[str]:
        return []


def run_until(show: LiveShow, done, timeout_s: float = 10.0) -> None:
    limit = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < limit, "the show did not get there in time"
        show.step()
        time.sleep(0.01)


def test_show_applies_a_post_edit_and_shows_a_broken_shader_in_the_hud(tmp_path, model):
    root = linked_set(tmp_path / "s", model)
    shaders = copy_shaders(tmp_path / "shaders")
    songset = load_set(root)
    hud = HudOverlay(size=96, visible=False)
    renderer = Renderer.offscreen(
        96, post=songset.post, shader_dir=shaders, effects=DEFAULT_CHAIN + (hud.effect,)
    )
    show = LiveShow(
        songset,
        renderer=renderer,
        generator=Generator.from_set(songset),
        clock=StillClock(),
        controls=LiveControls(songset, smoothing_s=0.0),
        hud=hud,
        duration=DURATION_S,
        reloader=HotReload(songset, shader_dir=shaders, poll_s=0.05),
    )
    try:
        run_until(show, lambda: show.caught_up)
        plain = renderer.read().astype(int)

        edit_set(root, post="vignette = 0.0\nbrightness = -0.5")
        run_until(show, lambda: show.songset.post.brightness == -0.5)
        show.step()
        darker = renderer.read().astype(int)
        assert darker.mean() < plain.mean() - 40

        before = (shaders / "grade.frag.glsl").stat().st_mtime_ns
        (shaders / "grade.frag.glsl").write_text("#version 330 core\nnot glsl\n")
        bump(shaders / "grade.frag.glsl", before)
        run_until(show, lambda: "grade.frag.glsl does not compile" in show.last_error)
        show.key("h")
        show.step()
        assert any(row.startswith("error: grade.frag.glsl does not compile") for row in hud.lines)
        hud.visible = False
        show.step()
        np.testing.assert_array_equal(renderer.read().astype(int), darker)  # last good grade
    finally:
        show.close()
        renderer.close()
