"""The README's screenshots of `lyriscope studio`: one per stage, taken in headless Chromium.

It copies sets/demo to a temporary sets folder (the repo's set is left alone), paints
pictures for two lines with scripts/demo_images.py as their `folder:` sources (with one file
that is no picture, so that a refusal shows), starts the studio there and clicks through the
flow as a person would: the sets, the lines on the waveform, collect and cluster, curate, a
short training (its screenshot taken while it runs), a preview with a slider moved, and an
export. Each stage is saved as docs/studio-STAGE.png.

Training starts line 1 afresh on its small dataset, which writes the line's model; the
demo's trained model is put back afterwards, so the preview and the export show the demo's
pictures rather than a model a minute old.

    python scripts/studio_screenshots.py [--out docs] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the CDP client the page tests use

from demo_images import write_line_images  # noqa: E402 - scripts/ is this script's folder
from headless_chromium import Chromium  # noqa: E402

from lyriscope.studio.app import Studio  # noqa: E402
from lyriscope.studio.options import StudioOptions  # noqa: E402
from lyriscope.studio.server import make_server  # noqa: E402

STAGES = ("sets", "lines", "images", "curate", "train", "preview", "export")
WIDTH, HEIGHT = 1360, 900
TRAINING = {  # #train-* field: value; a small model that ticks every few seconds on a CPU
    "kimg": "0.2",
    "tick": "0.008",
    "snap": "1",
    "batch": "4",
    "channel-base": "512",
    "channel-max": "32",
    "workers": "0",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="folder for studio-*.png")
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="work in this folder and keep it (default: a temp one)",
    )
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="lyriscope-studio-shots-"))
    try:
        shots = take_screenshots(work, args.out)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{len(shots)} screenshots in {args.out}")


def take_screenshots(work: Path, out: Path) -> list[Path]:
    sets_dir = work / "sets"
    root = sets_dir / "demo"
    shutil.copytree(ROOT / "sets" / "demo", root, ignore=shutil.ignore_patterns(*IGNORED))
    for line in (0, 1):
        write_line_images(root / "img", line, count=48, size=192, seed=7)
    (root / "img" / "line-02" / "notes.png").write_text("not a picture")  # collect refuses it
    out.mkdir(parents=True, exist_ok=True)
    studio = Studio(StudioOptions(sets_dir=sets_dir))
    server = make_server(studio)
    threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True).start()
    base = server.url.split("#")[0]
    shots: list[Path] = []
    try:
        with Chromium.start(
            base + "#/", profile=work / "profile", width=WIDTH, height=HEIGHT
        ) as browser:
            page = Page(browser, base, out, shots)
            page.stage_sets()
            page.stage_lines()
            page.stage_images(root)
            page.stage_curate()
            page.stage_train(root)
            page.stage_preview()
            page.stage_export()
    finally:
        server.stop()
        server.server_close()
        studio.close(wait_s=60)
    return shots


IGNORED = ("images", "clusters", "data", "runs", "renders", "preview", "loops", "generated")


class Page:
    """The studio in the browser, one method per stage, each ending in a screenshot."""

    def __init__(self, browser: Chromium, base: str, out: Path, shots: list[Path]) -> None:
        self.browser, self.base, self.out, self.shots = browser, base, out, shots

    def shoot(self, stage: str, *, settle_s: float = 0.8) -> None:
        time.sleep(settle_s)  # images decoded, the canvas drawn, transitions over
        path = self.browser.screenshot(self.out / f"studio-{stage}.png", width=WIDTH, height=HEIGHT)
        self.shots.append(path)
        print(f"{stage}: {path}", flush=True)

    def open_tab(self, tab: str) -> None:
        self.browser.navigate(f"{self.base}#/set/demo/{tab}")
        self.browser.wait_for(
            f"document.body.dataset.view === 'set-{tab}' && document.body.dataset.ready === '1'",
            timeout=60,
        )

    def wait_jobs_done(self, kind: str, count: int, timeout: float = 600) -> None:
        """Wait until `count` jobs of this kind are done; a failed one stops the script with its log."""
        jobs = f"[...document.querySelectorAll('.job[data-kind=\"{kind}\"]')]"
        self.browser.wait_for(
            f"{jobs}.filter(j => j.dataset.state === 'done').length >= {count} || "
            f"{jobs}.some(j => j.dataset.state === 'failed')",
            timeout=timeout,
        )
        failed = self.browser.evaluate(
            f"{jobs}.filter(j => j.dataset.state === 'failed').map(j => j.textContent)"
        )
        if failed:
            raise RuntimeError(f"a {kind} job failed: {failed[0]}")

    def stage_sets(self) -> None:
        self.browser.wait_for(
            "document.body.dataset.view === 'sets' && document.body.dataset.ready === '1'"
        )
        self.browser.type_into("#new-name", "my-song")
        self.browser.type_into("#new-audio-path", "/home/me/music/my-song.wav")
        self.browser.type_into("#new-lrclib", "Artist - My Song")
        self.shoot("sets")

    def stage_lines(self) -> None:
        self.open_tab("lines")
        self.browser.wait_for("document.body.dataset.wave === '1'")
        self.browser.click("#wave")  # a click picks the line under it: line 2's span
        self.shoot("lines")

    def stage_images(self, root: Path) -> None:
        row = 'tr.line-row[data-line="{}"]'
        for line in (1, 2):
            self.browser.type_into(f"{row.format(line)} input.sources", f"folder:img/line-0{line}")
            self.browser.click(f"{row.format(line)} button.save-line")
            self.browser.wait_for(
                f"document.querySelector('{row.format(line)} .note').textContent === 'saved to set.toml'"
            )
        self.open_tab("images")
        for field, value in (("k", "6"), ("min-side", "128"), ("size", "64")):
            self.browser.set_value(f"#opt-{field}", value)
        for line in (1, 2):
            self.browser.click(f'.images-row[data-line="{line}"] button.collect')
        self.wait_jobs_done("collect", 2)
        self.browser.wait_for(  # the table shows the new images (its buttons are enabled)
            "[...document.querySelectorAll('.count-images')].slice(0, 2).every(e => e.textContent !== '0')"
        )
        for line in (1, 2):
            self.browser.click(f'.images-row[data-line="{line}"] button.cluster')
        self.wait_jobs_done("cluster", 2)
        self.shoot("images")

    def stage_curate(self) -> None:
        self.open_tab("curate")
        self.browser.wait_for(
            "[...document.querySelectorAll('img.sheet')].every(i => i.complete && i.naturalWidth > 0)"
        )
        self.browser.click('.cur-card[data-cluster="2"] button.drop')
        self.browser.wait_for(
            "document.querySelector('.cur-card[data-cluster=\"2\"].drop') !== null"
        )
        self.browser.evaluate("document.querySelector('.cur-card[data-cluster=\"4\"]').focus()")
        self.shoot("curate")

    def stage_train(self, root: Path) -> None:
        model = root / "models" / "line-01.safetensors"
        self.open_tab("images")
        self.browser.click('.images-row[data-line="1"] button.prepare')
        self.wait_jobs_done("prepare", 1)
        self.open_tab("train")
        self.browser.set_value("#train-line", "1")  # the line chosen last was 2 (waveform, curate)
        self.browser.wait_for("document.querySelector('#train-line').value === '1'")
        for field, value in TRAINING.items():
            self.browser.set_value(f"#train-{field}", value)
        self.browser.set_value("#train-metrics", "none")
        self.browser.set_value("#train-device", "cpu")
        self.browser.evaluate("document.querySelector('#train-resume').checked = false")
        self.browser.click("#train-start")
        self.browser.wait_for("document.querySelector('.job[data-kind=\"train\"]') !== null")
        # A few ticks in, while it runs: losses, p, the latest samples and the time left.
        self.browser.wait_for(
            "Number((document.querySelector('#train-kimg-now') || {}).textContent) >= 0.024 || "
            'document.querySelector(\'.job[data-kind="train"][data-state="failed"]\') !== null',
            timeout=900,
        )
        self.wait_jobs_done("train", 0)  # raises when it failed
        self.browser.wait_for("document.querySelector('#train-sample') !== null")
        self.shoot("train", settle_s=2.5)
        self.browser.click("#train-stop")
        self.browser.wait_for(
            "document.querySelector('.job[data-kind=\"train\"]').dataset.state === 'cancelled'",
            timeout=300,
        )
        shutil.copyfile(ROOT / "sets" / "demo" / "models" / model.name, model)  # the demo's again

    def stage_preview(self) -> None:
        self.open_tab("preview")
        self.browser.set_value("#preview-line", "3")
        self.browser.wait_for("document.querySelector('#preview-line').value === '3'")
        self.browser.wait_for("document.body.dataset.ready === '1'")
        self.browser.set_value('input.walk[data-key="pulse"]', "0.9")
        self.browser.set_value("#preview-seconds", "4")
        self.browser.set_value("#preview-size", "256")
        self.browser.click("#preview-render")
        self.wait_jobs_done("preview", 1)
        self.browser.wait_for(
            "(() => { const v = document.querySelector('#preview-video'); return v && v.readyState >= 2; })()"
        )
        self.browser.evaluate(
            "(() => { const v = document.querySelector('#preview-video'); v.pause(); v.currentTime = 1.5; })()"
        )
        self.shoot("preview", settle_s=1.5)

    def stage_export(self) -> None:
        self.open_tab("export")
        for field, value in (("start", "10"), ("end", "22"), ("size", "256"), ("fps", "30")):
            self.browser.set_value(f"#export-{field}", value)
        self.browser.click("#export-start-button")
        self.wait_jobs_done("render", 1)
        self.browser.wait_for(
            "[...document.querySelectorAll('#renders video')].every(v => v.readyState >= 1)"
        )
        self.browser.evaluate(
            "(() => { const v = document.querySelector('#renders video'); v.currentTime = 6.5; })()"
        )
        self.browser.wait_for("document.querySelector('#renders video').readyState >= 2")
        self.shoot("export", settle_s=1.5)


if __name__ == "__main__":
    main()
