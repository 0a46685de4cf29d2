"""The whole flow in the studio, in headless Chromium, on a tiny generated song: slow (about a minute).

Make a set (paths typed in), edit a line, collect from its folder: source, cluster, curate,
prepare, train (stopped after a tick with a checkpoint, then resumed for one more), preview a
line with a slider moved, and export 5 s to an MP4 that PyAV decodes: every result on disk.
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
from setfiles import write_model
from studio_harness import (
    open_page,
    running_studio,
    two_colour_pictures,
    visit_tab,
    wait_job,
    write_song,
)

from lyriscope.setmodel import load_set
from lyriscope.trainers.training_loop import read_stats

pytestmark = pytest.mark.slow

TINY_TRAINING = {  # #train-* field: value (a 32² model with few channels, on the CPU)
    "kimg": "1",
    "tick": "0.004",
    "snap": "1",
    "batch": "4",
    "channel-base": "256",
    "channel-max": "16",
    "workers": "0",
}


def test_the_whole_flow_in_the_page(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the jobs' torch: tiny convolutions, 2 shared cores
    sets_dir = tmp_path / "sets"
    sets_dir.mkdir()
    audio, lyrics = write_song(tmp_path / "in", seconds=6.0, lines=("first light", "calm horizon"))
    with running_studio(sets_dir, stop_grace_s=60) as (_, server, _client):
        base = server.url.split("#")[0]
        browser = open_page(base + "#/", tmp_path / "profile")
        try:
            browser.wait_for(
                "document.body.dataset.view === 'sets' && document.body.dataset.ready === '1'"
            )
            browser.type_into("#new-name", "flow")
            browser.type_into("#new-audio-path", str(audio))
            browser.type_into("#new-lyrics-path", str(lyrics))
            browser.click("#create-set")
            browser.wait_for(
                "location.hash === '#/set/flow/lines' && document.body.dataset.ready === '1'"
            )
            root = sets_dir / "flow"

            row = 'tr.line-row[data-line="1"]'
            two_colour_pictures(root / "img" / "line1", count=8)
            browser.type_into(f"{row} input.sources", "folder:img/line1")
            browser.click(f"{row} button.save-line")
            browser.wait_for(
                f"document.querySelector('{row} .note').textContent === 'saved to set.toml'"
            )
            assert load_set(root).lines[0].sources == (f"folder:{root / 'img' / 'line1'}",)

            visit_tab(browser, "images")
            for field, value in (("k", "2"), ("min-side", "32"), ("size", "32")):
                browser.set_value(f"#opt-{field}", value)
            for kind in ("collect", "cluster"):
                browser.click(f'.images-row[data-line="1"] button.{kind}')
                wait_job(browser, kind)
            visit_tab(browser, "curate")
            browser.click('.cur-card[data-cluster="0"] button.keep')  # an explicit keep
            browser.wait_for(
                "(() => { const e = document.querySelector('#curate-line .count'); return e && e.textContent.includes('8 of 8'); })()"
            )
            visit_tab(browser, "images")
            browser.click('.images-row[data-line="1"] button.prepare')
            wait_job(browser, "prepare")
            assert (root / "data" / "line-01.zip").is_file()

            # Train: stop after the first tick (a checkpoint), then resume for one more tick.
            visit_tab(browser, "train")
            for field, value in TINY_TRAINING.items():
                browser.set_value(f"#train-{field}", value)
            browser.set_value("#train-metrics", "none")
            browser.set_value("#train-device", "cpu")
            browser.click("#train-start")
            state = root / "runs" / "line-01" / "training-state.pt"
            browser.wait_for("document.querySelector('#train-sample') !== null", timeout=120)
            assert state.is_file()
            browser.click("#train-stop")
            browser.wait_for(
                "document.querySelector('.job[data-kind=\"train\"]').dataset.state === 'cancelled'",
                timeout=120,
            )
            log = browser.evaluate(
                "document.querySelector('.job[data-kind=\"train\"] pre').textContent"
            )
            assert "continue with --resume" in log
            stopped_kimg = read_stats(state.parent / "stats.jsonl")[-1]["kimg"]
            browser.set_value("#train-kimg", f"{stopped_kimg + 0.004:g}")
            browser.wait_for("document.querySelector('#train-resume').checked")
            browser.click("#train-start")
            browser.wait_for(
                "document.querySelector('.job[data-kind=\"train\"]').dataset.state === 'done'",
                timeout=120,
            )
            rows = read_stats(state.parent / "stats.jsonl")
            assert rows[-1]["kimg"] == pytest.approx(stopped_kimg + 0.004)
            assert (root / "models" / "line-01.safetensors").is_file()
            browser.wait_for(
                f"document.querySelector('#train-kimg-now').textContent === '{rows[-1]['kimg']:.3f}'"
            )

            # Preview line 1 with its pulse moved, at 128 px for one second. `lyriscope preview`
            # loads the set with every model, so line 2 gets a random one (only 1 was trained).
            write_model(root / "models" / "line-02.safetensors", size=32, seed=2)
            visit_tab(browser, "preview")
            browser.set_value('input.walk[data-key="pulse"]', "1.2")
            browser.set_value("#preview-seconds", "1")
            browser.set_value("#preview-size", "128")
            browser.click("#preview-render")
            wait_job(browser, "preview", timeout=120)
            assert load_set(root).lines[0].walk.pulse == pytest.approx(1.2)  # saved for the export
            clip = root / "preview" / "line-01.mp4"
            browser.wait_for(
                "(() => { const v = document.querySelector('#preview-video'); return v && v.readyState >= 2; })()"
            )
            assert (root / "preview" / "line-01-keyframes.png").is_file()
            with av.open(str(clip)) as container:
                assert sum(1 for _ in container.decode(video=0)) == round(load_set(root).output.fps)

            # Export the first 5 s.
            visit_tab(browser, "export")
            for field, value in (("start", "0"), ("end", "5"), ("size", "64"), ("fps", "12")):
                browser.set_value(f"#export-{field}", value)
            browser.click("#export-start-button")
            wait_job(browser, "render", timeout=180)
            video = root / "renders" / "flow-0-5s.mp4"
            browser.wait_for(
                "[...document.querySelectorAll('#renders video')].some(v => v.readyState >= 1 && Math.abs(v.duration - 5) < 0.2)"
            )
            download = browser.evaluate("document.querySelector('#renders a.download').href")
            assert "download=1" in download and "renders/flow-0-5s.mp4" in download
        finally:
            browser.close()
    with av.open(str(video)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    with av.open(str(video)) as container:
        audio_stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(audio=0))
        rate = audio_stream.rate
    assert len(frames) == 60 and frames[0].shape == (64, 64, 3)  # 5 s at 12 fps
    assert np.std(frames[30]) > 1  # a picture, not a blank frame
    assert samples / rate == pytest.approx(5.0, abs=0.05)
    assert (
        json.loads((root / "curation.json").read_text())["lines"]["1"]["clusters"]["_all"]["0"]
        == "keep"
    )
