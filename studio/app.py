"""The studio's operations, one method per thing the page can do, free of HTTP.

Each calls what the CLI calls: lyriscope.commands.new.create_set, setmodel.edit_set (through
studio.edits), dataset_tools.queries.fill_queries, the CurationSession of `lyriscope
curate`, and for long work the `lyriscope` commands themselves as jobs (studio.jobs).
Bad input raises StudioRequestError (with its HTTP status) or LyriscopeError (400), whose
message the page shows as it is.
"""

from __future__ import annotations

import secrets
import sys
import threading
from pathlib import Path

from lyriscope.commands.new import SET_NAME, create_set
from lyriscope.dataset_tools.queries import fill_queries
from lyriscope.errors import DatasetError
from lyriscope.setmodel import SET_FILE, SongSet, load_set
from lyriscope.studio import curation, setview
from lyriscope.studio.edits import apply_edits
from lyriscope.studio.errors import BadRequest, NotFound
from lyriscope.studio.fields import Fields
from lyriscope.studio.files import file_in_set
from lyriscope.studio.job_commands import job_spec
from lyriscope.studio.jobs import JobQueue
from lyriscope.studio.options import StudioOptions
from lyriscope.studio.training import training_view
from lyriscope.studio.uploads import Uploads
from lyriscope.studio.waveform import WaveformCache


class Studio:
    """The sets of one folder, the job queue working on them and the page's uploads."""

    def __init__(self, options: StudioOptions) -> None:
        self.options = options
        self.sets_dir = Path(options.sets_dir).resolve()
        self.token = secrets.token_urlsafe(24)
        self.jobs = JobQueue(
            command=(sys.executable, "-m", "lyriscope.studio.child"),
            cwd=self.sets_dir,
            stop_grace_s=options.stop_grace_s,
            kill_grace_s=options.kill_grace_s,
        )
        self.uploads = Uploads(
            max_audio_bytes=options.max_audio_bytes, max_lyrics_bytes=options.max_lyrics_bytes
        )
        self.waveforms = WaveformCache()
        self._set_lock = threading.Lock()  # set.toml and curation.json: read-modify-write

    # -- sets ------------------------------------------------------------------------------

    def list_sets(self) -> dict:
        return {"sets_dir": str(self.sets_dir), "sets": setview.list_sets(self.sets_dir)}

    def set_root(self, name: str) -> Path:
        """The folder of set `name` in the sets folder; NotFound for any other name."""
        root = self.sets_dir / name
        if not SET_NAME.fullmatch(name) or not (root / SET_FILE).is_file():
            raise NotFound(f"there is no set {name!r:.60} in {self.sets_dir}")
        return root

    def songset(self, name: str) -> SongSet:
        return load_set(self.set_root(name))

    def create(self, body: object) -> dict:
        """A new set from {"name", "audio": {"upload"|"path"}, "lyrics": {...} or "lrclib"}."""
        request = Fields(body)
        name = request.required_text("name", max_chars=100)
        lrclib = request.text("lrclib", max_chars=300)
        lyrics = None if lrclib else self._file_choice(request, "lyrics")
        with self._set_lock:
            root = create_set(
                name,
                audio=self._file_choice(request, "audio"),
                lyrics=lyrics,
                lrclib=lrclib.strip() if lrclib else None,
                sets_dir=self.sets_dir,
                force=request.flag("force"),
            )
        return {"name": root.name}

    def _file_choice(self, request: Fields, name: str) -> Path:
        choice = Fields(request.body.get(name), where=name)
        if choice.has("upload"):
            return self.uploads.get(choice.required_text("upload", max_chars=100)).path
        path = choice.text("path", max_chars=4096)
        if not path or not path.strip():
            raise BadRequest(f"{name}: upload a file or give its path")
        return Path(path.strip()).expanduser()

    def view(self, name: str) -> dict:
        return setview.set_view(self.songset(name))

    def waveform(self, name: str) -> dict:
        return self.waveforms.peaks(self.songset(name).song.audio)

    def edit(self, name: str, body: object) -> dict:
        root = self.set_root(name)
        with self._set_lock:
            edited = apply_edits(root, body, line_count=len(load_set(root).lines))
        return setview.set_view(edited)

    def queries(self, name: str, body: object) -> dict:
        """Fill lines' queries as `lyriscope queries` does: {"lines": [1, 2] | null, "force"}."""
        songset = self.songset(name)
        request = Fields(body)
        lines = request.body.get("lines")
        if lines is not None:
            if not isinstance(lines, list) or not all(
                isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= len(songset.lines)
                for n in lines
            ):
                raise BadRequest(f"lines: expected line numbers 1..{len(songset.lines)}")
            lines = sorted({n - 1 for n in lines})
        with self._set_lock:
            result = fill_queries(songset.path, lines=lines, force=request.flag("force"))
        return {
            "filled": [i + 1 for i in result.filled],
            "kept": [i + 1 for i in result.kept],
            "synonyms": result.synonyms,
            "set": self.view(name),
        }

    # -- curation --------------------------------------------------------------------------

    def curation(self, name: str) -> dict:
        return curation.curation_state(self.songset(name))

    def decide(self, name: str, body: object) -> dict:
        songset = self.songset(name)
        if not isinstance(body, dict):
            raise BadRequest("a decision is a JSON object")
        with self._set_lock:
            session = curation.curation_session(songset)
            if session is None:
                raise DatasetError(f"{songset.root}: no clustered lines; cluster a line first")
            return session.decide(body)

    def thumbnail(self, name: str, line: int, sha256: str) -> bytes:
        jpeg = curation.thumbnail_jpeg(self.songset(name), line - 1, sha256)
        if jpeg is None:
            raise NotFound(f"line {line} has no image {sha256[:16]!r}")
        return jpeg

    # -- training, jobs, files -------------------------------------------------------------

    def training(self, name: str, line: int) -> dict:
        songset = self.songset(name)
        if not 1 <= line <= len(songset.lines):
            raise BadRequest(f"line: expected 1..{len(songset.lines)}, got {line}")
        return training_view(songset, line - 1)

    def start_job(self, name: str, body: object) -> dict:
        return self.jobs.submit(job_spec(self.songset(name), body))

    def file(self, name: str, rel: str) -> Path:
        path = file_in_set(self.set_root(name), rel)
        if path is None:
            raise NotFound(f"{name}: no file {rel!r:.80} in the set")
        return path

    def close(self, *, wait_s: float | None = None) -> list[int]:
        """Stop the jobs (running ones get SIGINT: checkpoints are written) and drop uploads."""
        try:
            return self.jobs.close(wait_s=wait_s)
        finally:
            self.uploads.close()
