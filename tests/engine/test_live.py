"""The live show: latest-frame-wins hand-over, line cues, actions, HUD, a real window and keys."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from setfiles import write_set
from xvfb_server import private_display

from lyriscope.engine.audio.features import Features, analyse_file
from lyriscope.engine.compose import (
    LineImage,
    Picture,
    line_walks,
    render_picture,
    shot_images,
    synthesize,
)
from lyriscope.engine.gl.renderer import DEFAULT_CHAIN, Renderer
from lyriscope.engine.lyrics import cued_lyric, song_lyric
from lyriscope.engine.offline.render import RenderOptions, render
from lyriscope.engine.shots import Shot, shot_at
from lyriscope.engine.show.clock import SystemClock, open_clock
from lyriscope.engine.show.controls import Action, LiveControls
from lyriscope.engine.show.director import Director
from lyriscope.engine.show.hud import HudInfo, HudOverlay, hud_lines
from lyriscope.engine.show.live import LiveOptions, LiveShow
from lyriscope.engine.show.play import PlayOptions, play
from lyriscope.engine.show.worker import FrameRequest, Mailbox, SynthesisWorker
from lyriscope.engine.synth.runtime import Generator, RuntimeOptions
from lyriscope.engine.synth.walk import Walk
from lyriscope.errors import LyriscopeError
from lyriscope.setmodel import load_set
from lyriscope.timeline import Timeline

FPS = 10.0
DURATION_S = 3.2  # line 1 at 0 s, line 2 at 2 s
SIZE = 192  # render side: big enough for a readable HUD, small enough for llvmpipe


class ManualClock:
    """A Clock whose time the test sets (the real clocks live in engine/show/clock.py)."""

    def __init__(self, t: float = 0.0, *, playing: bool = True) -> None:
        self.t = t
        self.playing = playing
        self.status = "clock: manual (test)"
        self.news: list[str] = []

    def now(self) -> float:
        return self.t

    def toggle(self) -> None:
        self.playing = not self.playing

    def seek(self, t: float) -> None:
        self.t = t

    def messages(self) -> list[str]:
        out, self.news = self.news, []
        return out


class SlowGenerator:
    """The real generator, slowed down: synthesis takes at least delay_s."""

    def __init__(self, generator: Generator, delay_s: float) -> None:
        self.generator = generator
        self.delay_s = delay_s

    def line(self, i):
        return self.generator.line(i)

    def synthesize(self, i, ws):
        time.sleep(self.delay_s)
        return self.generator.synthesize(i, ws)


@pytest.fixture(scope="module")
def live_set(tmp_path_factory) -> Path:
    """A two-line set: a quiet tone, line 2 at 2 s, two random 32² models."""
    return write_set(
        tmp_path_factory.mktemp("live") / "tiny",
        audio="tone",
        seconds=DURATION_S,
        output={"size": 64, "fps": FPS},
        walk={"loop_seconds": 4.0, "seeds": 3, "crossfade_s": 0.5},
        post={"vignette": 0.0},
        models=True,
    )


@pytest.fixture(scope="module")
def generator(live_set) -> Generator:
    return Generator.from_set(load_set(live_set))


def make_show(songset, generator, clock, *, renderer=None, hud_visible=True, **kwargs) -> LiveShow:
    hud = HudOverlay(size=SIZE, visible=hud_visible)
    renderer = renderer or Renderer.offscreen(
        SIZE, post=songset.post, effects=DEFAULT_CHAIN + (hud.effect,)
    )
    return LiveShow(
        songset,
        renderer=renderer,
        generator=generator,
        clock=clock,
        controls=LiveControls(songset, smoothing_s=0.0),
        hud=hud,
        duration=DURATION_S,
        **kwargs,
    )


def run_until(show: LiveShow, done, *, timeout_s: float = 10.0) -> None:
    """Step the display loop until done() (the worker draws in its own thread)."""
    limit = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < limit, "the show did not get there in time"
        show.step()
        time.sleep(0.002)


def settle(show: LiveShow) -> None:
    """Step until the worker has drawn what the display asked for last."""
    show.step()
    run_until(show, lambda: show.caught_up)


# --- latest frame wins -------------------------------------------------------------------


def test_mailbox_hands_over_only_the_newest_item():
    box: Mailbox[int] = Mailbox()
    assert box.put(1) is False
    assert box.put(2) is True and box.put(3) is True
    assert box.take(timeout=0) == 3
    assert box.take(timeout=0) is None
    assert box.dropped == 2


def test_mailbox_take_waits_for_a_put_from_another_thread():
    box: Mailbox[str] = Mailbox()
    threading.Timer(0.05, box.put, args=("frame",)).start()
    assert box.take(timeout=5) == "frame"
    box.close()
    assert box.take(timeout=5) is None  # closed and empty: does not hang


# --- which line ----------------------------------------------------------------------------


THREE = Timeline(boundaries=(0.0, 1.0, 2.0, 3.0), segment_lines=(0, 1, 2), n_lines=3)


def test_without_a_cue_the_director_follows_the_timeline_like_the_offline_render():
    director = Director(THREE, crossfade_s=[0.5] * 3)
    for t in np.arange(0.0, 3.0, 0.05):
        assert director.shot(t) == shot_at(THREE, t, crossfade_s=[0.5] * 3)
    assert director.source == "song"


def test_a_hand_cue_holds_until_the_songs_next_boundary_then_fades_back():
    director = Director(THREE, crossfade_s=[0.5] * 3)
    director.cue_line(2, 0.25)
    fading_in = director.shot(0.5)
    assert (fading_in.line, fading_in.prev, fading_in.t_line) == (2, 0, 0.25)
    assert 0 < fading_in.mix < 1
    assert director.shot(0.9) == director.shot(0.9) and director.shot(0.9).line == 2
    assert director.source == "cue"
    back = director.shot(1.1)  # the boundary at 1 s ends the cue: line 2 fades out into 1
    assert (back.line, back.prev) == (1, 2) and 0 < back.mix < 1
    assert back.t_prev == pytest.approx(1.1 - 0.25)  # the cued loop goes on while it fades
    assert director.shot(1.6) == shot_at(THREE, 1.6, crossfade_s=[0.5] * 3)
    assert director.source == "song"


def test_next_and_prev_step_from_the_line_on_screen_and_stay_in_the_set():
    director = Director(THREE, crossfade_s=[0.0] * 3)
    director.step(+1, 0.5)
    assert director.shot(0.6).line == 1
    director.step(+1, 0.7)
    director.step(+1, 0.8)
    assert director.shot(0.9).line == 2
    director.step(-1, 0.95)
    assert director.shot(0.96).line == 1
    with pytest.raises(LyriscopeError, match="no line 4; the set has lines 1..3"):
        director.cue_line(3, 0.5)


def test_a_seek_back_before_the_cue_returns_to_the_timeline():
    director = Director(THREE, crossfade_s=[0.0] * 3)
    director.cue_line(2, 0.5)
    assert director.shot(0.2).line == 0


def test_without_a_timeline_lines_change_only_by_hand():
    director = Director(None, crossfade_s=[0.0] * 3)
    assert [director.shot(t).line for t in (0.0, 5.0, 500.0)] == [0, 0, 0]
    assert director.shot(7.5).t_line == 7.5  # the walk runs on the show's time
    director.step(+1, 10.0)
    assert director.shot(1e6).line == 1 and director.source == "hand"


# --- the show, offscreen ---------------------------------------------------------------------


def test_live_image_equals_the_offline_renders_image_at_the_same_time(live_set, generator):
    songset = load_set(live_set)
    clock = ManualClock(2.7)
    show = make_show(songset, generator, clock, hud_visible=False)
    try:
        settle(show)
        shown = show.shown
        assert shown.request.shot.line == 1
        reference = synthesize(
            [LineImage(1, 2.7 - 2.0, round(2.7 * FPS), songset.lines[1].walk)],
            walks=line_walks(songset, generator, fps=FPS),
            generator=generator,
            features=None,
        )[0]
        np.testing.assert_array_equal(shown.image, reference)
    finally:
        show.close()
        show.renderer.close()


@pytest.fixture(scope="module")
def sung_set(tmp_path_factory) -> Path:
    """Word-timed lines with a gap between them, styled lyrics on, word pulses on."""
    return write_set(
        tmp_path_factory.mktemp("sung") / "tiny",
        lrc=(
            "[00:00.50]first <00:01.04>line <00:01.44>\n"
            "[00:01.60]\n"
            "[00:02.20]second <00:02.64>line <00:02.90>\n"
        ),
        audio="tone",
        seconds=DURATION_S,
        output={"size": 64, "fps": FPS},
        walk={"loop_seconds": 4.0, "seeds": 3, "crossfade_s": 0.5, "word_pulse": 0.8},
        post={"vignette": 0.0, "text": True, "text_size": 0.12, "text_fade_s": 0.3},
        models=True,
    )


def test_live_lyric_layer_equals_the_offline_renders_at_the_same_song_time(sung_set, tmp_path):
    songset = load_set(sung_set)
    generator = Generator.from_set(songset)
    render(
        songset,
        tmp_path / "frames",
        # One frame a batch, as the live worker draws: a batch may differ in the last bit.
        options=RenderOptions(size=SIZE, batch=1, progress=False),
        generator=generator,
    )
    clock = ManualClock(playing=False)
    features = analyse_file(songset.song.audio, fps=FPS)
    show = make_show(songset, generator, clock, hud_visible=False, features=features)
    try:
        # Fading in, a word filling, the gap (pictures, no words), the last word, the outro.
        for k in (6, 12, 18, 28, 30):
            clock.t = k / FPS
            settle(show)
            offline = np.asarray(Image.open(tmp_path / "frames" / f"frame{k:06d}.png"))
            np.testing.assert_array_equal(show.renderer.read(), offline, err_msg=f"frame {k}")
        # A hand cue changes the pictures, not the words: line 2 is sung, line 1 is shown.
        clock.t = 2.4
        show.controls.push(Action("cue", 0.0))
        settle(show)
        shown = show.shown
        assert shown.request.shot.line == 0
        live = show.renderer.read().copy()  # before another GL context is made current
        timeline = Timeline.from_set(songset, duration=DURATION_S)
        with Renderer.offscreen(SIZE, post=songset.post) as reference:

            def with_words(lyric):
                picture = Picture(shown.image, shown.prev_image, shown.request.shot.mix, lyric)
                render_picture(reference, picture)
                return reference.read()

            sung = song_lyric(songset, timeline, 2.4)
            assert sung.text == "second line"
            np.testing.assert_array_equal(live, with_words(sung))
            cued = replace(sung, text=songset.lines[0].text, words=())
            assert not np.array_equal(live, with_words(cued))
    finally:
        show.close()
        show.renderer.close()


class SilentInput:
    """A live input (--audio-in) that has heard 2 s of silence."""

    status = "audio in: test"

    def features(self) -> Features:
        return Features.silent(round(2 * FPS), fps=FPS)


def test_with_a_live_input_the_cued_lines_words_are_shown(sung_set):
    songset = load_set(sung_set)
    generator = Generator.from_set(songset)
    clock = ManualClock(0.5, playing=False)
    show = make_show(songset, generator, clock, hud_visible=False, live_input=SilentInput())
    try:
        settle(show)
        clock.t = 1.0
        show.controls.push(Action("cue", 1.0))
        settle(show)
        clock.t = 1.6  # no song clock: the song's gap at 1.6 s means nothing here
        settle(show)
        shown = show.shown
        assert shown.request.shot.line == 1
        live = show.renderer.read().copy()  # before another GL context is made current
        with Renderer.offscreen(SIZE, post=songset.post) as reference:

            def with_words(lyric):
                picture = Picture(shown.image, shown.prev_image, shown.request.shot.mix, lyric)
                render_picture(reference, picture)
                return reference.read()

            np.testing.assert_array_equal(live, with_words(cued_lyric(songset, 1, 1.6, since=1.0)))
            assert not np.array_equal(live, with_words(None))  # there are words
    finally:
        show.close()
        show.renderer.close()


def test_the_line_follows_the_clock_and_a_cue_overrides_it(live_set, generator):
    songset = load_set(live_set)
    clock = ManualClock(0.5)
    show = make_show(songset, generator, clock)
    try:
        settle(show)
        assert show.shown_line == 0
        show.controls.push(Action("cue", 1.0))  # what a MIDI note "line:2" sends
        clock.t = 0.6
        run_until(show, lambda: show.shown_line == 1)
        assert "line 2/2 (cue) 'second line'" in show.hud.lines
        clock.t = 2.1  # past the boundary at 2 s: the timeline is back in charge (also line 2)
        show.controls.push(Action("prev"))
        clock.t = 2.2
        run_until(show, lambda: show.shown_line == 0)
        clock.t = 3.1  # the cue holds to the song's end: there is no later boundary
        settle(show)
        assert show.shown_line == 0
    finally:
        show.close()
        show.renderer.close()


def test_blackout_fades_to_black_and_flash_to_white(live_set, generator):
    songset = load_set(live_set)
    show = make_show(
        songset,
        generator,
        ManualClock(1.0),
        hud_visible=False,
        options=LiveOptions(blackout_fade_s=0.05, flash_s=5.0),
    )
    try:
        settle(show)
        picture = show.renderer.read().copy()
        assert picture.mean() > 20
        show.controls.push(Action("blackout"))
        show.step()
        time.sleep(0.08)
        show.step()
        assert show.renderer.read().max() == 0
        show.controls.push(Action("blackout"))
        show.controls.push(Action("flash"))
        time.sleep(0.08)
        show.step()
        time.sleep(0.08)
        show.step()
        assert show.renderer.read().min() > 200  # a slow flash, early: nearly white
    finally:
        show.close()
        show.renderer.close()


def test_freeze_holds_the_picture_while_the_clock_runs(live_set, generator):
    songset = load_set(live_set)
    clock = ManualClock(0.2)
    show = make_show(songset, generator, clock, hud_visible=False)
    try:
        settle(show)
        show.controls.push(Action("freeze"))
        held = show.renderer.read().copy()
        for k in range(5):
            clock.t = 0.4 + 0.3 * k
            show.step()
            time.sleep(0.02)
        np.testing.assert_array_equal(show.renderer.read(), held)
        show.controls.push(Action("freeze"))
        clock.t = 1.5
        settle(show)
        assert np.abs(show.renderer.read().astype(int) - held).mean() > 1
    finally:
        show.close()
        show.renderer.close()


def test_a_slow_generator_drops_frames_instead_of_falling_behind(live_set, generator):
    songset = load_set(live_set)
    clock = ManualClock(0.0)
    show = make_show(songset, SlowGenerator(generator, 0.15), clock, hud_visible=False)
    try:
        began = time.monotonic()
        latencies, synth_s = [], 0.0
        while time.monotonic() - began < 1.5:
            clock.t = time.monotonic() - began  # a clock running in real time
            show.step()
            latencies.append(show.stats.latency_frames)
            synth_s = max(synth_s, show.stats.synth_ms / 1000)
            time.sleep(0.01)
        stats = show.stats
        assert stats.presented > 3 * stats.images  # the display never waits for synthesis
        assert stats.dropped > 0
        # The shown image is at most two syntheses old (the one running when it was asked
        # for, then its own), at the end as at the start: nothing queues up. A queue would
        # be ~10 frames behind by now.
        assert max(latencies) <= 2 * synth_s * FPS + 1
    finally:
        show.close()
        show.renderer.close()


def test_paused_clock_draws_nothing_new(live_set, generator):
    songset = load_set(live_set)
    clock = ManualClock(1.0, playing=False)
    show = make_show(songset, generator, clock, hud_visible=False)
    try:
        settle(show)
        images = show.stats.images
        for _ in range(10):
            show.step()
            time.sleep(0.01)
        assert show.stats.images == images
    finally:
        show.close()
        show.renderer.close()


class FailingGenerator(SlowGenerator):
    def synthesize(self, i, ws):
        raise RuntimeError("CUDA out of memory")


def test_a_failing_synthesis_is_reported_and_the_show_goes_on(live_set, generator):
    songset = load_set(live_set)
    show = make_show(songset, FailingGenerator(generator, 0.0), ManualClock(1.0))
    try:
        began = time.monotonic()
        show.start()
        assert time.monotonic() - began < 5  # does not wait out the first-image timeout
        show.step()
        assert show.last_error == "synthesis failed: CUDA out of memory"
        assert "error: synthesis failed: CUDA out of memory" in show.hud.lines
        assert show.stats.presented == 1
    finally:
        show.close()
        show.renderer.close()


# --- HUD and keys --------------------------------------------------------------------------


def test_hud_lines_say_what_the_performer_needs():
    rows = hud_lines(
        HudInfo(
            t=62.5,
            playing=True,
            line=1,
            n_lines=5,
            line_text="ray of light",
            line_source="cue",
            fps=59.9,
            frame_ms=16.7,
            dropped=3,
            latency_frames=1.0,
            clock_status="audio: default, latency 23 ms",
            inputs=("MIDI: nanoKONTROL2", "OSC: udp 9000"),
            error="grade.frag.glsl does not compile",
        )
    )
    text = "\n".join(rows)
    for expected in (
        "1:02.50  playing",
        "line 2/5 (cue) 'ray of light'",
        "59.9 fps",
        "dropped 3",
        "latency 1.0 frames",
        "audio: default, latency 23 ms",
        "MIDI: nanoKONTROL2",
        "OSC: udp 9000",
        "error: grade.frag.glsl does not compile",
    ):
        assert expected in text


def test_hud_shows_the_latency_from_the_clock_read_to_the_present(live_set, generator, monkeypatch):
    # Synthesis takes >= 0.1 s and the display >= 0.05 s to present: the image on screen is
    # at least 0.15 s = 1.5 frames (10 fps) older than the clock read it was asked at,
    # though the (stopped) clock says no time passed.
    songset = load_set(live_set)
    show = make_show(
        songset,
        SlowGenerator(generator, 0.1),
        ManualClock(0.5),
        options=LiveOptions(hud_refresh_s=0.0),
    )
    present = show.renderer.present

    def slow_present() -> None:
        time.sleep(0.05)
        present()

    monkeypatch.setattr(show.renderer, "present", slow_present)
    try:
        show.start()  # asked at once, drawn >= 0.1 s later
        show.step()  # presented here
        latency = show.stats.latency_frames
        assert (0.1 + 0.05) * FPS <= latency < 30  # and well under 3 s on a busy machine
        show.step()  # the clock stands still: nothing new, the latency stays
        assert show.stats.latency_frames == latency
        assert f"latency {latency:.1f} frames" in show.hud.lines[3]
    finally:
        show.close()
        show.renderer.close()


def test_hud_is_drawn_over_the_top_left_and_h_hides_it(live_set, generator):
    songset = load_set(live_set)
    show = make_show(songset, generator, ManualClock(1.0, playing=False))
    try:
        settle(show)
        with_hud = show.renderer.read().copy()
        show.key("h")
        show.step()
        without = show.renderer.read().copy()
    finally:
        show.close()
        show.renderer.close()
    corner = np.abs(
        with_hud[: SIZE // 8, : SIZE // 3].astype(int) - without[: SIZE // 8, : SIZE // 3]
    )
    assert corner.mean() > 10
    bottom = np.abs(with_hud[-SIZE // 4 :].astype(int) - without[-SIZE // 4 :])
    assert bottom.max() == 0  # the rest of the picture is untouched


def test_escape_while_playing_asks_again_then_quits(live_set, generator):
    songset = load_set(live_set)
    show = make_show(songset, generator, ManualClock(1.0, playing=True))
    try:
        settle(show)
        show.key("escape")
        show.step()
        assert "press Esc again to quit" in show.hud.lines
        assert not show.quitting
        show.key("escape")
        show.step()
        assert show.quitting
    finally:
        show.close()
        show.renderer.close()


# --- a real window under Xvfb, real X key events ---------------------------------------------


@pytest.fixture
def xvfb_display(monkeypatch):
    """A private X server; skipped when Xvfb is not installed."""
    with private_display(monkeypatch, screen="1280x1024x24") as display:
        yield display


def xdotool(*args: str) -> str:
    result = subprocess.run(["xdotool", *args], capture_output=True, text=True, timeout=10)
    return result.stdout.strip()


def send_keys_when_the_window_is_up(title: str, keys: list[str], done: threading.Event) -> None:
    """Find the window by its title, focus it, type the keys (XTEST events, as from a keyboard)."""
    limit = time.monotonic() + 20
    window = ""
    while not window and time.monotonic() < limit:
        window = xdotool("search", "--name", title).split("\n")[0]
        time.sleep(0.1)
    if window:
        xdotool("windowfocus", "--sync", window)
        for key in keys:
            time.sleep(0.3)
            xdotool("key", key)
    done.set()


def test_window_shows_picture_and_hud_and_x_keys_change_the_line(
    xvfb_display, live_set, generator, tmp_path
):
    if shutil.which("xdotool") is None:
        pytest.skip("xdotool is not installed (Debian: apt-get install xdotool)")

    songset = load_set(live_set)
    clock = ManualClock(0.5, playing=False)  # paused on line 1
    hud = HudOverlay(size=SIZE)
    renderer = Renderer.window(
        SIZE, post=songset.post, title="lyriscope live test", effects=DEFAULT_CHAIN + (hud.effect,)
    )
    show = LiveShow(
        songset,
        renderer=renderer,
        generator=generator,
        clock=clock,
        controls=LiveControls(songset, smoothing_s=0.0),
        hud=hud,
        duration=DURATION_S,
    )
    done = threading.Event()
    sender = threading.Thread(
        target=send_keys_when_the_window_is_up,
        args=("lyriscope live test", ["Right", "space", "f"], done),
        daemon=True,
    )
    shot = tmp_path / "shot.png"
    try:
        sender.start()
        began = time.monotonic()
        show.start()
        while not done.is_set() and time.monotonic() - began < 30:
            show.step()
        show.run(seconds=0.5, screenshot=shot)  # let the last key's frames through
        import glfw

        fullscreen = bool(glfw.get_window_monitor(renderer.target.window))  # F
    finally:
        show.close()
        renderer.close()
    assert show.stats.presented > 10
    assert show.stats.lines_shown[0] == 0 and show.stats.lines_shown[-1] == 1  # Right: next line
    assert clock.playing  # space: play
    assert fullscreen
    picture = np.asarray(Image.open(shot))
    assert picture.shape == (SIZE, SIZE, 3)
    assert "line 2/2 (cue) 'second line'" in hud.lines
    assert picture[: SIZE // 8, : SIZE // 3].std() > 20  # text on the HUD panel
    assert picture[SIZE // 2 :].std() > 5  # the model's picture


@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb is not installed")
def test_cli_live_runs_for_seconds_and_saves_a_screenshot(xvfb_display, live_set, tmp_path):
    shot = tmp_path / "cli.png"
    env = {**os.environ, "DISPLAY": xvfb_display}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "lyriscope.cli",
            "live",
            str(live_set),
            "--no-audio",
            "--no-midi",
            "--seconds",
            "1.5",
            "--size",
            str(SIZE),
            "--device",
            "cpu",
            "--screenshot",
            str(shot),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "showed" in result.stdout
    # Silent on the system clock: said in the terminal at the start, once, not only in the HUD.
    said = [row for row in result.stderr.splitlines() if "runs on the system clock" in row]
    assert said == ["lyriscope live: audio off (--no-audio); the show runs on the system clock"]

    picture = np.asarray(Image.open(shot))
    assert picture.shape == (SIZE, SIZE, 3) and picture[SIZE // 2 :].std() > 5


def test_play_assembles_a_show_from_python(xvfb_display, live_set, generator, tmp_path):
    shot = tmp_path / "play.png"
    options = PlayOptions(size=SIZE, silent=True, midi=False, seconds=0.5, screenshot=shot)
    stats = play(live_set, options=options, generator=generator)
    assert stats.presented > 0 and stats.images > 0

    picture = np.asarray(Image.open(shot))
    assert picture.shape == (SIZE, SIZE, 3) and picture[SIZE // 2 :].std() > 5


@pytest.mark.gpu
def test_worker_on_its_cuda_stream_draws_what_the_generator_draws(live_set):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")

    songset = load_set(live_set)
    gen = Generator.from_set(songset, options=RuntimeOptions(device="cuda"))
    walk = Walk.for_model(gen.line(0), seeds=songset.lines[0].seeds, fps=FPS)
    params = songset.lines[0].walk
    errors: list[str] = []
    worker = SynthesisWorker(gen, on_error=errors.append)
    try:
        shot = Shot(line=0, t_line=0.7, prev=None, t_prev=0.0, mix=1.0)
        worker.requests.put(
            FrameRequest(
                t=0.7,
                shot=shot,
                images=shot_images(shot, frame=7, params=params),
                walks=[walk],
                features=None,
            )
        )
        result = worker.results.take(timeout=60)
    finally:
        worker.close()
    assert errors == [] and result is not None
    expected = gen.synthesize(0, walk.w(0.7, params=params, frame=7)[None])[0]
    np.testing.assert_array_equal(result.image, expected)


def test_without_an_audio_device_the_show_says_so_at_the_start(
    xvfb_display, live_set, generator, monkeypatch
):
    # No sound card: PortAudio finds no output device, the clock is the system's.
    monkeypatch.setattr("lyriscope.engine.show.clock.find_device", lambda *a, **k: None)
    said: list[str] = []
    clock = open_clock(load_set(live_set), duration=2.0)
    assert isinstance(clock, SystemClock) and "no audio output device found" in clock.notice
    options = PlayOptions(size=SIZE, midi=False, seconds=0.2, notify=said.append)
    play(live_set, options=options, generator=generator)
    assert said == [clock.notice]
