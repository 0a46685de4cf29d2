"""Writing rendered frames: an H.264 + AAC video (PyAV) or a numbered PNG sequence.

Frames go through a bounded queue to the writer's own thread, so rendering and encoding
overlap while memory stays bounded: `write()` blocks while the queue is full. An error in
the writer thread is raised in the caller at its next `write()` or `close()`.

The video's audio track is the song, sample for sample, cut to the video's span
[audio_start_s, audio_start_s + frames / fps] (silence where the song has ended). Frame k
has pts k in time base 1 / fps.

Atomic: the video is written to a temporary file beside the target, a PNG sequence to a
temporary folder, and either is renamed into place when `close()` finishes cleanly. An
exception, a KeyboardInterrupt (or the CLI's SIGTERM, which raises one) or `abort()`
removes the partial result, so a stopped render leaves the old output or none, never a
broken one. What a killed render left (SIGKILL: no cleanup runs) is removed when the next
render of the same output starts (lyriscope.atomic.remove_stale_parts).

Example:
    >>> with open_writer("out.mp4", fps=60, size=(512, 512), audio="song.wav") as writer:
    ...     for frame in frames:  # uint8 [512, 512, 3]
    ...         writer.write(frame)
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import re
import threading
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import soundfile
from PIL import Image

from lyriscope.atomic import atomic_folder, atomic_path, remove_stale_parts
from lyriscope.audiofile import decode
from lyriscope.errors import LyriscopeError
from lyriscope.timebase import fps_fraction
from lyriscope.track_mix import mix_for_video

log = logging.getLogger(__name__)

VIDEO_FORMATS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska"}  # suffix -> PyAV format
X264_PRESETS: tuple[str, ...] = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)
# The default x264 preset: throughput first. At crf 18 on the demo's 512² frames (2-core
# CPU) veryfast took half the encoder CPU time of medium (4.7 vs 10 ms a frame) for a file
# no larger and a PSNR 0.25 dB lower. crf keeps its meaning (the same rate factor with any
# preset); --preset medium or slower spends more time for a little more quality per bit.
DEFAULT_PRESET = "veryfast"
AAC_BIT_RATE = 192_000  # bits per second for the song's track
# What a PNG-sequence render writes into its folder: frame000000.png, ... and audio.wav.
_RENDER_FILE = re.compile(r"frame\d{6}\.png|audio\.wav")
_STOP = object()  # queue sentinel: no more frames


class _QueuedWriter:
    """The shared part: a bounded queue, a worker thread, errors handed back to the producer."""

    def __init__(self, *, size: tuple[int, int], queue_frames: int, name: str) -> None:
        width, height = size
        if width < 1 or height < 1:
            raise LyriscopeError(f"frame size must be positive, got {width}x{height}")
        if queue_frames < 1:
            raise ValueError(f"queue_frames must be at least 1, got {queue_frames}")
        self.size = (int(width), int(height))
        self.frames_written = 0  # frames accepted by write()
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_frames)
        self._error: BaseException | None = None
        self._aborted = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)

    def _start(self) -> None:
        self._thread.start()

    # --- producer side --------------------------------------------------------------------

    def write(self, frame: Any) -> None:
        """Queue one frame: uint8 [height, width, 3] (numpy or torch CPU), top row first.

        The frame is copied, so the caller may reuse its array. Blocks while the queue is full.
        """
        if self._closed:
            raise ValueError("write() after close(); open a new writer")
        self._raise_worker_error()
        pixels = self._check_frame(frame)
        while True:
            try:
                self._queue.put(pixels, timeout=0.1)
                break
            except queue.Full:
                self._raise_worker_error()  # a dead worker would never make room
        self.frames_written += 1

    def close(self) -> None:
        """Write the remaining frames and finish the file(s); raises what went wrong."""
        if self._closed:
            return
        self._closed = True
        self._send_stop()
        self._thread.join()
        if self._error is not None:
            self._discard()
            error, self._error = self._error, None
            raise self._for_people(error)
        self._commit()

    def abort(self) -> None:
        """Stop without finishing: queued frames are dropped and a partial video removed."""
        if self._closed:
            return
        self._closed = True
        self._aborted.set()
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()
        self._send_stop()
        self._thread.join()
        self._discard()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def _send_stop(self) -> None:
        while self._thread.is_alive():
            try:
                self._queue.put(_STOP, timeout=0.1)
                return
            except queue.Full:
                continue

    def _raise_worker_error(self) -> None:
        if self._error is not None:
            self.abort()
            error, self._error = self._error, None
            raise self._for_people(error)

    def _for_people(self, error: BaseException) -> BaseException:
        """The worker's error as the caller should see it (names the target, not a temp file)."""
        return error

    def _check_frame(self, frame: Any) -> np.ndarray:
        if hasattr(frame, "detach"):  # torch, without importing it here
            frame = frame.detach().cpu().numpy()
        pixels = np.asarray(frame)
        width, height = self.size
        if pixels.dtype != np.uint8 or pixels.shape != (height, width, 3):
            raise ValueError(
                f"expected a frame as uint8 [{height}, {width}, 3], got "
                f"{pixels.dtype} {list(pixels.shape)}"
            )
        return np.array(pixels, order="C", copy=True)

    # --- worker side ------------------------------------------------------------------------

    def _work(self) -> None:
        stopped = False  # the producer's stop was taken: nothing more will be put
        try:
            while True:
                item = self._queue.get()
                if item is _STOP or self._aborted.is_set():
                    stopped = item is _STOP
                    break
                self._encode(item)
            if not self._aborted.is_set():
                self._flush()
        except BaseException as exc:  # noqa: BLE001 - handed to the producer thread
            self._error = exc
            # Keep taking frames so a producer blocked in put() wakes up and sees the error;
            # a failure while flushing comes after the stop, so there is nothing left to wait for.
            while not stopped and self._queue.get() is not _STOP:
                pass
        finally:
            self._release()

    def _encode(self, pixels: np.ndarray) -> None:
        raise NotImplementedError

    def _flush(self) -> None:
        """End of stream (worker thread)."""

    def _release(self) -> None:
        """Close what the worker holds, success or not (worker thread)."""

    def _commit(self) -> None:
        """Make the result visible (producer thread, after a clean flush)."""

    def _discard(self) -> None:
        """Remove what a failed or stopped writer left (producer thread)."""


class VideoWriter(_QueuedWriter):
    """An H.264 (libx264, yuv420p, BT.709) video with the song as AAC; .mp4, .mov or .mkv."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fps: float | Fraction,  # frames per second; 30000/1001 as a Fraction is kept exact
        size: tuple[int, int],  # (width, height) in pixels; both even (yuv420p)
        audio: str | os.PathLike[str] | None = None,  # the song; None writes no audio track
        audio_start_s: float = 0.0,  # song time of frame 0 (a render from --start)
        crf: int = 18,  # x264 constant rate factor, 0 lossless .. 51 worst
        preset: str = DEFAULT_PRESET,  # x264 speed/size trade-off (X264_PRESETS)
        queue_frames: int = 8,  # frames waiting for the encoder at most
        threads: int | None = None,  # x264 frame threads; None: the CPUs this process may use
    ) -> None:
        super().__init__(size=size, queue_frames=queue_frames, name="lyriscope-video-writer")
        self.path = Path(path)
        container_format = VIDEO_FORMATS.get(self.path.suffix.lower())
        if container_format is None:
            raise LyriscopeError(
                f"{self.path}: unsupported video file type; use one of " + ", ".join(VIDEO_FORMATS)
            )
        width, height = self.size
        if width % 2 or height % 2:
            raise LyriscopeError(
                f"{self.path}: H.264 (yuv420p) needs an even width and height, got "
                f"{width}x{height}; use an even [output] size such as {width + width % 2}"
            )
        if not 0 <= crf <= 51:
            raise LyriscopeError(f"crf must be in 0..51, got {crf}")
        if preset not in X264_PRESETS:
            raise LyriscopeError(
                f"unknown x264 preset {preset!r}; use one of {', '.join(X264_PRESETS)}"
            )
        if audio_start_s < 0:
            raise LyriscopeError(f"audio_start_s must be at least 0, got {audio_start_s}")
        if threads is not None and threads < 1:
            raise LyriscopeError(f"encoder threads must be at least 1, got {threads}")
        self.threads = usable_cpus() if threads is None else threads
        self.fps = fps_fraction(fps)
        self._song, self._sr = _load_song(audio) if audio is not None else (None, 0)
        self._song_start = round(audio_start_s * self._sr)  # first song sample in the video
        self._audio_written = 0  # samples of the track encoded so far
        self._frames_encoded = 0

        remove_stale_parts(self.path)  # what a killed render of this output left
        self._atomic = contextlib.ExitStack()
        try:  # from here on, any failure or Ctrl-C removes the temporary file
            self._tmp = self._atomic.enter_context(atomic_path(self.path))
            self._container = av.open(str(self._tmp), mode="w", format=container_format)
            self._video = self._container.add_stream("libx264", rate=self.fps)
            self._video.width, self._video.height = width, height
            self._video.pix_fmt = "yuv420p"
            self._video.options = {"crf": str(crf), "preset": preset}
            cc = self._video.codec_context
            # PyAV asks for slice threads, which x264 then uses: lower latency, less
            # throughput (medium, 512², 2-core CPU: 99 vs 159 frames/s). A file encodes for
            # throughput: frame threads, one per CPU (x264's output may depend on the count;
            # with the same count and options it is the same bytes every time).
            cc.thread_type = "FRAME"
            cc.thread_count = self.threads
            cc.colorspace = cc.color_primaries = cc.color_trc = 1  # BT.709, as HD players expect
            cc.color_range = 1  # limited ("tv") range
            self._audio = None
            if self._song is not None:
                layout = "mono" if self._song.shape[0] == 1 else "stereo"
                self._audio = self._container.add_stream("aac", rate=self._sr, layout=layout)
                self._audio.bit_rate = AAC_BIT_RATE
            self._start()
        except BaseException:
            self._abandon_file()
            raise

    def _encode(self, pixels: np.ndarray) -> None:
        frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
        frame = frame.reformat(format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG")
        frame.pts = self._frames_encoded
        frame.time_base = 1 / self.fps  # pts counts frames
        for packet in self._video.encode(frame):
            self._container.mux(packet)
        self._frames_encoded += 1
        self._write_audio_until(self._frames_encoded)

    def _write_audio_until(self, frames: int) -> None:
        """Encode the song up to the end of video frame `frames` - 1 (interleaved with video)."""
        if self._audio is None:
            return

        end = round(frames * self._sr / self.fps)  # track samples
        if end <= self._audio_written:
            return
        a, b = self._song_start + self._audio_written, self._song_start + end
        chunk = np.zeros((self._song.shape[0], end - self._audio_written), np.float32)  # [ch, n]
        have = self._song[:, min(a, self._song.shape[1]) : min(b, self._song.shape[1])]
        chunk[:, : have.shape[1]] = have  # past the song's end: silence
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=self._audio.layout.name)
        frame.sample_rate = self._sr
        frame.pts = self._audio_written
        frame.time_base = Fraction(1, self._sr)
        for packet in self._audio.encode(frame):
            self._container.mux(packet)
        self._audio_written = end

    def _flush(self) -> None:
        for packet in self._video.encode(None):
            self._container.mux(packet)
        if self._audio is not None:
            for packet in self._audio.encode(None):
                self._container.mux(packet)
        self._container.close()

    def _release(self) -> None:
        with contextlib.suppress(Exception):
            self._container.close()  # no-op after a clean _flush

    def _commit(self) -> None:
        if self.frames_written == 0:
            self._discard()
            raise LyriscopeError(f"{self.path}: no frames were written; nothing to save")
        self._atomic.close()  # fsync + rename over the target
        log.info("wrote %s: %d frames at %s fps", self.path, self.frames_written, self.fps)

    def _discard(self) -> None:
        self._abandon_file()

    def _for_people(self, error: BaseException) -> BaseException:
        if isinstance(error, OSError) and error.errno is not None:
            # A plain OSError naming the video: the CLI turns ENOSPC into "the disk is full".
            plain = OSError(error.errno, os.strerror(error.errno), str(self.path))
            plain.__cause__ = error
            return plain
        return error

    def _abandon_file(self) -> None:
        with contextlib.suppress(Exception):
            self._container.close()
        # Unwinding atomic_path with an exception removes the temporary file.
        self._atomic.__exit__(LyriscopeError, LyriscopeError("abandoned"), None)


class PngSequenceWriter(_QueuedWriter):
    """Numbered PNGs (frame000000.png, ...) in a folder; with `audio`, the cut song as audio.wav.

    The frames go to a temporary folder that replaces `folder` when the writer closes
    cleanly, so `folder` must be new, empty, or hold only what a render wrote there.
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        *,
        fps: float | Fraction,  # frames per second (for the audio cut)
        size: tuple[int, int],  # (width, height) in pixels
        audio: str | os.PathLike[str] | None = None,  # the song; written cut to the frames' span
        audio_start_s: float = 0.0,  # song time of frame 0
        compress_level: int = 3,  # zlib level 0..9: higher is smaller and slower
        queue_frames: int = 8,  # frames waiting for the writer thread at most
        crf: int | None = None,  # ignored (PNG is lossless); open_writer() passes one option set
        preset: str | None = None,  # ignored, as crf
        threads: int | None = None,  # ignored, as crf (PNGs are written by one thread)
    ) -> None:
        super().__init__(size=size, queue_frames=queue_frames, name="lyriscope-png-writer")
        self.folder = Path(folder)
        _check_replaceable(self.folder)
        self.fps = fps_fraction(fps)
        self.audio = None if audio is None else Path(audio)
        self.audio_start_s = audio_start_s
        self.compress_level = compress_level
        self._index = 0
        if self.audio is not None:
            _load_song(self.audio, for_video=False)  # fail now, not after the render
        remove_stale_parts(self.folder)  # what a killed render of this folder left
        self._atomic = contextlib.ExitStack()
        try:  # from here on, any failure or Ctrl-C removes the temporary folder
            self._tmp = self._atomic.enter_context(atomic_folder(self.folder))
            self._start()
        except BaseException:
            self._discard()
            raise

    def frame_path(self, frame: int) -> Path:
        """Where frame `frame` (0-based) is written."""
        return self.folder / f"frame{frame:06d}.png"

    def _encode(self, pixels: np.ndarray) -> None:
        with open(self._tmp / self.frame_path(self._index).name, "wb") as f:
            Image.fromarray(pixels, "RGB").save(f, format="PNG", compress_level=self.compress_level)
            f.flush()
            os.fsync(f.fileno())  # durable before the folder is renamed into place
        self._index += 1

    def _commit(self) -> None:
        try:
            if self.audio is not None:
                self._write_audio(self._tmp / "audio.wav")
            self._atomic.close()  # rename over the target folder
        except BaseException:
            self._discard()
            raise

    def _write_audio(self, path: Path) -> None:
        song, sr = _load_song(self.audio, for_video=False)  # a WAV keeps every channel
        start = round(self.audio_start_s * sr)
        n = round(self.frames_written * sr / self.fps)
        cut = np.zeros((song.shape[0], n), np.float32)  # [ch, n]
        have = song[:, min(start, song.shape[1]) : min(start + n, song.shape[1])]
        cut[:, : have.shape[1]] = have
        with open(path, "wb") as f:
            soundfile.write(f, cut.T, sr, format="WAV", subtype="FLOAT")
            f.flush()
            os.fsync(f.fileno())

    def _discard(self) -> None:
        # Unwinding atomic_folder with an exception removes the temporary folder.
        self._atomic.__exit__(LyriscopeError, LyriscopeError("abandoned"), None)


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _check_replaceable(folder: Path) -> None:
    """A PNG render replaces its folder at the end: only a new, empty or rendered one may be."""
    if folder.exists() and not folder.is_dir():
        raise LyriscopeError(f"{folder}: exists and is not a folder; give a folder for PNG frames")
    if not folder.is_dir():
        return
    foreign = sorted(p.name for p in folder.iterdir() if not _RENDER_FILE.fullmatch(p.name))
    if foreign:
        raise LyriscopeError(
            f"{folder}: holds {foreign[0]!r}, which a render did not write; give a new or "
            f"empty folder for PNG frames (the render replaces the whole folder when it ends)"
        )


def open_writer(path: str | os.PathLike[str], **options: Any) -> VideoWriter | PngSequenceWriter:
    """A VideoWriter for .mp4/.mov/.mkv, a PngSequenceWriter for a folder (no suffix)."""
    target = Path(path)
    if target.suffix.lower() in VIDEO_FORMATS:
        return VideoWriter(target, **options)
    if target.suffix == "" or target.is_dir():
        return PngSequenceWriter(target, **options)
    raise LyriscopeError(
        f"{target}: cannot tell how to write it; use a .mp4, .mov or .mkv file "
        f"or a folder (no suffix) for PNG frames"
    )


def _load_song(path: str | os.PathLike[str], *, for_video: bool = True) -> tuple[np.ndarray, int]:
    """The song as float32 [channels, n] and its sample rate; for_video: the track's 1 or 2
    channels (5.1 and 7.1 mixed down, lyriscope.track_mix), else all of its own."""
    samples, sr = decode(path, mono=False)  # [channels, n]
    if for_video:
        samples = mix_for_video(samples, source=path)
    return np.ascontiguousarray(samples, dtype=np.float32), sr
