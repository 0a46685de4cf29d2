"""Video (H.264 + AAC) and PNG sequence writers, checked by decoding what they wrote."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from fractions import Fraction

import av
import numpy as np
import pytest
import soundfile
from PIL import Image

from lyriscope.engine.offline.encoder import (
    PngSequenceWriter,
    VideoWriter,
    open_writer,
)
from lyriscope.errors import LyriscopeError

SR = 44100
AAC_FRAME = 1024  # samples per AAC frame


@pytest.fixture
def song(tmp_path):
    """A wav: 3 s of stereo silence, a 440 Hz burst from 1.0 s to 1.5 s (right at half level)."""
    t = np.arange(3 * SR) / SR
    burst = np.where((t >= 1.0) & (t < 1.5), 0.5 * np.sin(2 * np.pi * 440 * t), 0.0)
    samples = np.stack([burst, 0.5 * burst], axis=1).astype(np.float32)  # [n, 2]
    path = tmp_path / "song.wav"
    soundfile.write(path, samples, SR)
    return path


def colour_frames(n: int, size: tuple[int, int]) -> list[np.ndarray]:
    """n flat frames of different colours: uint8 [height, width, 3]."""
    width, height = size
    return [np.full((height, width, 3), (40 + 5 * k, 200 - 3 * k, 90), np.uint8) for k in range(n)]


def decode_video(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        info = (stream.codec_context.name, stream.codec_context.pix_fmt)
        frames = [(f.time, f.to_ndarray(format="rgb24")) for f in container.decode(stream)]
    return info, frames


def decode_audio(path) -> tuple[np.ndarray, int, float]:
    """Samples [channels, n], the rate and the stream's duration in seconds."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        duration = float(stream.duration * stream.time_base)
        chunks = [f.to_ndarray() for f in container.decode(stream)]
        return np.concatenate(chunks, axis=1), stream.rate, duration


def burst_onset(samples: np.ndarray, sr: int) -> float:
    """Time (s) of the first sample above half the burst's amplitude, left channel."""
    return float(np.argmax(np.abs(samples[0]) > 0.25)) / sr


@pytest.mark.parametrize("fps", [30, Fraction(30000, 1001)])
def test_video_has_every_frame_at_its_time_and_the_song_as_aac(tmp_path, song, fps):
    n, size = 24, (64, 48)
    out = tmp_path / "video.mp4"
    frames = colour_frames(n, size)
    with VideoWriter(out, fps=fps, size=size, audio=song, preset="ultrafast") as writer:
        for frame in frames:
            writer.write(frame)
    (codec, pix_fmt), decoded = decode_video(out)
    assert (codec, pix_fmt) == ("h264", "yuv420p")
    assert len(decoded) == n
    for k, (time_s, pixels) in enumerate(decoded):
        assert time_s == pytest.approx(k / float(fps), abs=1e-6)
        assert pixels.shape == (48, 64, 3)
        # 8-bit limited-range YUV costs up to 2 levels on the way there and back.
        assert np.abs(pixels.mean(axis=(0, 1)) - frames[k][0, 0]).max() <= 3
    samples, rate, duration = decode_audio(out)
    assert rate == SR and samples.shape[0] == 2
    assert abs(duration - n / float(fps)) <= AAC_FRAME / SR
    assert abs(samples.shape[1] - n * SR / float(fps)) <= AAC_FRAME


@pytest.mark.parametrize("start_s", [0.0, 0.5, 0.8])
def test_audio_start_cuts_the_song_to_the_video_span(tmp_path, song, start_s):
    fps, n = 25, 40  # 1.6 s of video
    out = tmp_path / "cut.mp4"
    with VideoWriter(
        out, fps=fps, size=(32, 32), audio=song, audio_start_s=start_s, preset="ultrafast"
    ) as writer:
        for frame in colour_frames(n, (32, 32)):
            writer.write(frame)
    samples, rate, duration = decode_audio(out)
    assert abs(duration - n / fps) <= AAC_FRAME / SR
    assert burst_onset(samples, rate) == pytest.approx(1.0 - start_s, abs=0.01)
    assert np.abs(samples[1]).max() == pytest.approx(0.25, abs=0.03)  # the right channel


def test_video_longer_than_the_song_ends_in_silence(tmp_path, song):
    out = tmp_path / "long.mp4"
    with VideoWriter(
        out, fps=10, size=(32, 32), audio=song, audio_start_s=2.0, preset="ultrafast"
    ) as writer:
        for frame in colour_frames(20, (32, 32)):  # 2 s from 2.0 s: the song ends at 3.0 s
            writer.write(frame)
    samples, rate, duration = decode_audio(out)
    assert abs(duration - 2.0) <= AAC_FRAME / SR
    assert np.abs(samples[:, int(1.1 * rate) :]).max() < 1e-3


def test_video_without_audio_has_one_stream(tmp_path):
    out = tmp_path / "mute.mkv"
    with open_writer(out, fps=12, size=(32, 32), preset="ultrafast") as writer:
        assert isinstance(writer, VideoWriter)
        for frame in colour_frames(5, (32, 32)):
            writer.write(frame)
    with av.open(str(out)) as container:
        assert [s.type for s in container.streams] == ["video"]
        assert sum(1 for _ in container.decode(video=0)) == 5


@pytest.mark.parametrize("stop", [RuntimeError("render failed"), KeyboardInterrupt()])
def test_a_stopped_render_leaves_the_old_file_and_no_partial_one(tmp_path, song, stop):
    out = tmp_path / "video.mp4"
    out.write_bytes(b"the previous render")
    with pytest.raises(type(stop)):
        with VideoWriter(out, fps=30, size=(32, 32), audio=song, preset="ultrafast") as writer:
            for k, frame in enumerate(colour_frames(10, (32, 32))):
                if k == 6:
                    raise stop
                writer.write(frame)
    assert out.read_bytes() == b"the previous render"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["song.wav", "video.mp4"]


def test_a_full_disk_is_an_oserror_naming_the_video_and_leaves_nothing(tmp_path):
    # A file-size limit makes the writes fail like a full disk (EFBIG instead of ENOSPC).
    script = textwrap.dedent(f"""
        import resource, signal
        import numpy as np
        from lyriscope.engine.offline.encoder import VideoWriter
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, 50_000))
        noise = np.random.default_rng(0).integers(0, 256, (300, 64, 64, 3), dtype=np.uint8)
        try:
            with VideoWriter({str(tmp_path / "big.mp4")!r}, fps=30, size=(64, 64), crf=0,
                             preset="ultrafast") as writer:
                for frame in noise:
                    writer.write(frame)
        except OSError as exc:
            print(type(exc).__name__, exc.errno, exc.filename)
    """)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.stdout.split() == ["OSError", "27", str(tmp_path / "big.mp4")], result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "size, message",
    [
        ((65, 64), "even width and height"),
        ((0, 64), "positive"),
    ],
)
def test_bad_sizes_are_refused_before_any_work(tmp_path, size, message):
    with pytest.raises(LyriscopeError, match=message):
        VideoWriter(tmp_path / "v.mp4", fps=30, size=size)
    assert list(tmp_path.iterdir()) == []


def test_bad_options_are_refused(tmp_path):
    with pytest.raises(LyriscopeError, match="unknown x264 preset 'quick'"):
        VideoWriter(tmp_path / "v.mp4", fps=30, size=(32, 32), preset="quick")
    with pytest.raises(LyriscopeError, match="crf must be in 0..51"):
        VideoWriter(tmp_path / "v.mp4", fps=30, size=(32, 32), crf=60)
    with pytest.raises(LyriscopeError, match="use a .mp4, .mov or .mkv file or a folder"):
        open_writer(tmp_path / "v.avi", fps=30, size=(32, 32))
    with VideoWriter(tmp_path / "v.mp4", fps=30, size=(32, 32)) as writer:
        with pytest.raises(ValueError, match=r"uint8 \[32, 32, 3\]"):
            writer.write(np.zeros((32, 32, 3), np.float32))
        writer.write(np.zeros((32, 32, 3), np.uint8))
    assert list(tmp_path.iterdir()) == [tmp_path / "v.mp4"]


def test_png_sequence_writes_numbered_frames_and_the_cut_audio(tmp_path, song):
    folder = tmp_path / "frames"
    frames = colour_frames(7, (40, 24))
    with open_writer(folder, fps=20, size=(40, 24), audio=song, audio_start_s=0.9) as writer:
        assert isinstance(writer, PngSequenceWriter)
        for frame in frames:
            writer.write(frame)
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["audio.wav"] + [f"frame{k:06d}.png" for k in range(7)]
    for k in (0, 6):
        png = np.asarray(Image.open(folder / f"frame{k:06d}.png"))
        np.testing.assert_array_equal(png, frames[k])
    audio, sr = soundfile.read(folder / "audio.wav", always_2d=True)
    original, _ = soundfile.read(song, always_2d=True)  # as stored (16-bit)
    start = round(0.9 * SR)
    assert sr == SR
    np.testing.assert_allclose(audio, original[start : start + round(7 * SR / 20)], atol=1e-6)


def test_closing_without_frames_saves_nothing_and_says_so(tmp_path):
    with pytest.raises(LyriscopeError, match="no frames were written"):
        with VideoWriter(tmp_path / "empty.mp4", fps=30, size=(32, 32)):
            pass
    assert list(tmp_path.iterdir()) == []
    writer = PngSequenceWriter(tmp_path / "frames", fps=30, size=(16, 16))
    writer.close()
    with pytest.raises(ValueError, match="after close"):
        writer.write(np.zeros((16, 16, 3), np.uint8))
