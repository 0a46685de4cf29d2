"""A model's header is checked before its metadata decides memory: limits, then shapes (no allocation).

Files are real models (tests/setfiles.write_model) whose header JSON is then edited, as a
hostile or damaged file would be: a config asking for a huge generator, one that does not
make the file's tensors, entries whose dtype, shape and byte range disagree.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from bounded_run import MAX_PEAK_MB, run_lyriscope
from setfiles import write_model, write_set

from lyriscope.cli import main
from lyriscope.errors import CheckpointError
from lyriscope.trainers.checkpoint import check_model_file, load_model, read_model_config

FAST_S = 5.0  # a refusal reads a header and builds on the meta device: well under a second


def edit_header(path: Path, edit: Callable[[dict], None]) -> Path:
    """Rewrite the safetensors header of `path` after `edit(header)`; tensor bytes unchanged."""
    data = path.read_bytes()
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + length])
    edit(header)
    raw = json.dumps(header).encode()
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + data[8 + length :])
    return path


def edit_config(path: Path, **changes) -> Path:
    """`path` with its metadata config updated by `changes` (nested dicts replace whole)."""

    def edit(header: dict) -> None:
        config = json.loads(header["__metadata__"]["config"])
        config.update(changes)
        header["__metadata__"]["config"] = json.dumps(config)

    return edit_header(path, edit)


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return write_model(tmp_path / "line-01.safetensors", size=32)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            dict(z_dim=200000, w_dim=200000),
            r"z_dim is 200000; lyriscope takes a whole number in 1\.\.4096",
        ),
        (dict(img_resolution=65536), r"img_resolution is 65536; .* in 4\.\.8192"),
        (dict(img_resolution=100), r"img_resolution is 100; expected a power of two"),
        (dict(w_dim="512"), r"w_dim is '512'; lyriscope takes a whole number"),
        (dict(c_dim=True), r"c_dim is True; lyriscope takes a whole number"),
        (
            dict(synthesis_kwargs={"channel_base": 2**30, "channel_max": 2**20}),
            r"makes a generator of [\d,]+ numbers; lyriscope loads at most",
        ),
        (
            dict(z_dim=4096, w_dim=4096),  # within limits, but not what the file holds
            r"tensor synthesis\.b4\.conv1\.affine\.weight has shape \[32, 512\], but the "
            r"architecture needs \[32, 4096\]",
        ),
    ],
    ids=[
        "huge-latents",
        "huge-resolution",
        "odd-resolution",
        "text",
        "bool",
        "huge-channels",
        "other-shapes",
    ],
)
def test_a_config_that_does_not_fit_is_refused_before_building(model, changes, message):
    edit_config(model, **changes)
    for read in (check_model_file, load_model):
        began = time.monotonic()
        with pytest.raises(CheckpointError, match=rf"line-01\.safetensors: .*{message}"):
            read(model)
        assert time.monotonic() - began < FAST_S


def test_header_entries_that_do_not_add_up_are_refused(model):
    def stretch(header: dict) -> None:
        header["mapping.w_avg"]["shape"] = [10**9]  # its byte range still holds 64 floats

    edit_header(model, stretch)
    read_model_config(model)  # the config alone still reads
    with pytest.raises(CheckpointError, match=r"entry for tensor mapping\.w_avg does not add up"):
        check_model_file(model)


def test_a_good_model_passes_and_loads(model):
    assert check_model_file(model) == read_model_config(model)
    assert load_model(model).img_resolution == 32


@pytest.mark.parametrize(
    "changes",
    [
        dict(z_dim=20000, w_dim=20000),  # 3 GB of mapping weights, were they built
        dict(z_dim=4096, w_dim=4096, mapping_kwargs={"num_layers": 8}),  # 550 MB
    ],
    ids=["past-the-limits", "within-limits-other-shapes"],
)
def test_sample_refuses_such_a_model_in_little_memory(model, tmp_path, changes):
    edit_config(model, **changes)
    outcome = run_lyriscope(
        ["sample", str(model), "--seeds", "0", "--device", "cpu", "-o", str(tmp_path / "out")],
        timeout_s=90,
    )
    assert outcome.code == 2, outcome.stderr[-2000:]
    assert len(outcome.stderr.strip().splitlines()) == 1 and "line-01.safetensors" in outcome.stderr
    assert 0 < outcome.peak_mb < MAX_PEAK_MB, outcome


def test_check_refuses_a_model_of_the_wrong_shape(tmp_path, capsys):
    root = write_set(tmp_path / "set", audio="tone", models=True)
    edit_config(
        root / "models" / "line-02.safetensors",
        synthesis_kwargs={"channel_base": 256, "channel_max": 16},  # the tensors have 32
    )
    assert main(["check", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "line-02.safetensors: tensor synthesis.b4.const has shape [32, 4, 4]" in err
