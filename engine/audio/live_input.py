"""`--audio-in`: a live input (line-in from the mixer) analysed as it arrives.

The PortAudio callback only queues the samples; a worker thread runs the same
StreamingAnalyser as the offline analysis, so the audio thread never waits on it and the
walk reads the same feature rows it would read from a file. The lines are then cued by
hand or MIDI on a system clock.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import replace

import numpy as np

from lyriscope.engine.audio.devices import (
    CLOSE_TIMEOUT_S,
    close_stream,
    find_device,
    import_sounddevice,
)
from lyriscope.engine.audio.features import Features, StreamingAnalyser
from lyriscope.errors import DeviceError


class LiveInput:
    """`--audio-in`: a live input analysed as it arrives, features for the walk.

    The PortAudio callback only queues the samples; a worker thread runs the
    StreamingAnalyser, so the audio thread never waits on the analysis.
    """

    def __init__(
        self,
        device: str | int | None,  # input device index or name; None: the system default
        *,
        fps: float,  # video frames per second (one feature row per frame)
        song_features: Features | None = None,  # the song's features: their levels normalise
        latency: str | float = "low",
    ) -> None:
        sd = import_sounddevice()
        found = find_device(device, direction="input")
        if found is None:
            raise DeviceError(
                "no audio input device found for --audio-in; connect one (see `lyriscope "
                "devices`) or play the set's song instead"
            )
        self.device = found
        self.sr = int(round(found.default_samplerate))
        self.fps = float(fps)
        # Only the song's levels carry over: its beats are not where the live input's are.
        norm = song_features.norm if song_features is not None else None
        self._analyser = StreamingAnalyser(self.sr, self.fps, norm=norm)
        self._rows = _FeatureRows(fps=self.fps, sr=self._analyser.sr)
        self._blocks: queue.SimpleQueue[np.ndarray | None] = queue.SimpleQueue()
        self._overflows = 0
        self._received = 0  # samples per channel that arrived
        self._worker = threading.Thread(
            target=self._analyse, name="lyriscope-audio-in", daemon=True
        )
        self._worker.start()
        try:
            self._stream = sd.InputStream(
                device=found.index,
                samplerate=self.sr,
                channels=min(found.max_input_channels, 2),
                dtype="float32",
                latency=latency,
                callback=self._callback,
            )
            self._stream.start()
        except (sd.PortAudioError, ValueError) as exc:
            self._blocks.put(None)
            raise DeviceError(
                f"cannot record from audio device {found.label()}: {exc}; pick another with "
                f"--audio-in (see `lyriscope devices`)"
            ) from exc

    def _callback(self, indata, frames, time_info, status) -> None:
        if status.input_overflow:
            self._overflows += 1
        self._received += frames
        self._blocks.put(indata.mean(axis=1, dtype=np.float32))  # [frames] mono

    def _analyse(self) -> None:
        while True:
            block = self._blocks.get()
            if block is None:
                return
            self._rows.append(self._analyser.process(block))

    def features(self) -> Features:
        """All feature rows so far (first_frame 0); a snapshot that later rows do not change."""
        return self._rows.snapshot()

    @property
    def received_s(self) -> float:
        """Seconds of input that arrived so far (dropouts of the device not counted)."""
        return self._received / self.sr

    @property
    def status(self) -> str:
        """One line for the HUD."""
        return f"audio in: {self.device.name}, {self._rows.n_frames} frames analysed"

    def close(self) -> None:
        stream, self._stream = getattr(self, "_stream", None), None
        if stream is not None:
            close_stream(stream, wait_s=CLOSE_TIMEOUT_S)
        self._blocks.put(None)
        self._worker.join(CLOSE_TIMEOUT_S)


class _FeatureRows:
    """Feature rows appended by one thread and read as snapshots by another.

    Rows live in arrays that grow by doubling; a snapshot is views of the first n rows,
    which are never written again, so it needs no copy.
    """

    def __init__(self, *, fps: float, sr: int) -> None:
        self._lock = threading.Lock()
        self._empty = Features.silent(0, fps=fps, sr=sr)
        self._arrays = {
            "rms": np.zeros(0, np.float32),
            "onset": np.zeros(0, np.float32),
            "onsets": np.zeros(0, bool),
            "bands": np.zeros((0, 3), np.float32),
            "chroma": np.zeros((0, 12), np.float32),
        }
        self._beats: list[np.ndarray] = []
        self._tempo = 0.0
        self._norm = None
        self.n_frames = 0

    def append(self, rows: Features) -> None:
        k = rows.n_frames
        with self._lock:
            n = self.n_frames
            for name, array in self._arrays.items():
                if n + k > array.shape[0]:
                    bigger = np.zeros(
                        (max(2 * array.shape[0], n + k, 256), *array.shape[1:]), array.dtype
                    )
                    bigger[:n] = array[:n]
                    self._arrays[name] = array = bigger
                array[n : n + k] = getattr(rows, name)
            if rows.beats.size:
                self._beats.append(rows.beats)
            self._tempo, self._norm = rows.tempo, rows.norm
            self.n_frames = n + k

    def snapshot(self) -> Features:
        with self._lock:
            n = self.n_frames
            views = {name: array[:n] for name, array in self._arrays.items()}
            beats = np.concatenate(self._beats) if self._beats else np.zeros(0, np.int64)
            return replace(self._empty, **views, beats=beats, tempo=self._tempo, norm=self._norm)
