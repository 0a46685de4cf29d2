"""The studio in headless Chromium: make a set, edit a line, collect, cluster, curate and prepare.

The CPU half of the flow, clicked through the page against a running studio; every step is
checked on disk. The GPU half (train, preview, export) is in test_flow.py, marked slow.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from headless_chromium import wait_until
from PIL import Image
from studio_harness import (
    open_page,
    running_studio,
    two_colour_pictures,
    visit_tab,
    wait_job,
    write_song,
)

from lyriscope.setmodel import load_set


def test_a_set_made_edited_collected_curated_and_prepared_in_the_page(tmp_path: Path) -> None:
    sets_dir = tmp_path / "sets"
    sets_dir.mkdir()
    audio, lyrics = write_song(tmp_path / "in", seconds=6.0, lines=("first light", "calm horizon"))
    with running_studio(sets_dir) as (_, server, _client):
        browser = open_page(server.url.split("#")[0] + "#/", tmp_path / "profile")
        try:
            # A new set from two uploads.
            browser.wait_for(
                "document.body.dataset.view === 'sets' && document.body.dataset.ready === '1'"
            )
            browser.set_files("#new-audio-file", [audio])
            browser.set_files("#new-lyrics-file", [lyrics])
            browser.type_into("#new-name", "song")
            browser.click("#create-set")
            browser.wait_for(
                "location.hash === '#/set/song/lines' && document.body.dataset.wave === '1'"
            )
            root = sets_dir / "song"
            assert (root / "song.wav").read_bytes() == audio.read_bytes()
            assert browser.evaluate("document.querySelectorAll('tr.line-row').length") == 2
            times = browser.evaluate(
                "document.querySelector('tr.line-row[data-line=\"2\"] td.time').textContent"
            )
            assert times.startswith("00:03.0")  # line 2's LRC stamp
            wave = browser.evaluate(
                "(() => { const c = document.querySelector('#wave'); const d = c.getContext('2d')"
                ".getImageData(0, 0, c.width, c.height).data; let lit = 0;"
                " for (let i = 0; i < d.length; i += 4) lit += d[i] > 150; return lit; })()"
            )
            assert wave > 1000  # the song's peaks are drawn

            # A bad edit shows set.toml's own sentence and changes nothing.
            before = (root / "set.toml").read_text()
            row = 'tr.line-row[data-line="1"]'
            browser.type_into(f"{row} input.sources", "folder:../../elsewhere")
            browser.click(f"{row} button.save-line")
            browser.wait_for(
                f"document.querySelector('{row} .note').textContent.includes('outside the set folder')"
            )
            assert (root / "set.toml").read_text() == before

            # A good edit: the line's text and its own folder of pictures.
            two_colour_pictures(root / "img" / "line1")
            browser.type_into(f"{row} input.text", "first ray of light")
            browser.type_into(f"{row} input.sources", "folder:img/line1")
            browser.click(f"{row} button.save-line")
            assert wait_until(lambda: load_set(root).lines[0].text == "first ray of light")
            assert load_set(root).lines[0].sources == (f"folder:{root / 'img' / 'line1'}",)
            assert "# line 1" in (root / "set.toml").read_text()  # lyriscope new's comments kept

            # Collect, cluster (2 clusters of small pictures), from the Images tab.
            visit_tab(browser, "images")
            browser.set_value("#opt-k", "2")
            browser.set_value("#opt-min-side", "32")
            browser.set_value("#opt-size", "32")
            browser.click('.images-row[data-line="1"] button.collect')
            wait_job(browser, "collect")
            assert len(list((root / "images" / "line-01").glob("*.png"))) == 6
            browser.wait_for(
                "document.querySelector('.images-row[data-line=\"1\"] .count-images').textContent === '6'"
            )
            browser.click('.images-row[data-line="1"] button.cluster')
            wait_job(browser, "cluster")
            assert (root / "clusters" / "line-01" / "clusters.json").is_file()

            # Curate: drop one of the two clusters.
            visit_tab(browser, "curate")
            browser.wait_for(
                "[...document.images].filter(i => i.classList.contains('sheet')).every(i => i.complete && i.naturalWidth > 0)"
            )
            assert browser.evaluate("document.querySelectorAll('.cur-card').length") == 2
            browser.click('.cur-card[data-cluster="1"] button.drop')
            assert wait_until(
                lambda: (
                    (root / "curation.json").is_file()
                    and json.loads((root / "curation.json").read_text())["lines"]["1"]["clusters"][
                        "_all"
                    ]
                    == {"1": "drop"}
                )
            )
            browser.wait_for(
                "document.querySelector('#curate-line .count').textContent.includes('3 of 6')"
            )

            # Prepare the kept three at 32 px.
            visit_tab(browser, "images")
            browser.set_value("#opt-size", "32")
            browser.click('.images-row[data-line="1"] button.prepare')
            wait_job(browser, "prepare")
            with zipfile.ZipFile(root / "data" / "line-01.zip") as zf:
                pngs = [n for n in zf.namelist() if n.endswith(".png")]
                assert len(pngs) == 3
                with zf.open(pngs[0]) as f, Image.open(f) as img:
                    assert img.size == (32, 32)

            # The jobs outlive the page: a reload shows all three.
            browser.navigate(server.url.split("#")[0] + "#/set/song/images")
            browser.wait_for("document.querySelectorAll('.job[data-state=\"done\"]').length === 3")
            kinds = browser.evaluate(
                "[...document.querySelectorAll('.job')].map(j => j.dataset.kind)"
            )
            assert kinds == ["prepare", "cluster", "collect"]
        finally:
            browser.close()
