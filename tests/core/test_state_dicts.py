"""Published weight files: read as data in either format, checked key by key against a model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from lyriscope.errors import CheckpointError
from lyriscope.state_dicts import load_checked, read_state_dict

EXAMPLE = "someone's net-1234.pth"


def _net() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))


@pytest.mark.parametrize(
    ("suffix", "wrapped"),
    [(".pth", False), (".pth", True), (".safetensors", False), (".SAFETENSORS", False)],
)
def test_reads_both_formats_and_the_state_dict_wrapper(tmp_path: Path, suffix: str, wrapped: bool):
    source = _net()
    path = tmp_path / f"net{suffix}"
    if suffix == ".pth":
        torch.save({"state_dict": source.state_dict()} if wrapped else source.state_dict(), path)
    else:
        save_file(source.state_dict(), str(path))
    state = read_state_dict(path, net="Net", example=EXAMPLE)
    loaded = _net()
    load_checked(loaded, state, path=path, net="Net")
    for key, value in source.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_values_take_the_models_dtypes(tmp_path: Path):
    source = _net().double()
    model = _net()
    load_checked(model, source.state_dict(), path=tmp_path / "x.pth", net="Net")
    assert model[0].weight.dtype == torch.float32
    assert torch.equal(model[0].weight, source[0].weight.float())


class _Calls:
    def __reduce__(self):
        return (os.system, ("true",))


def test_a_pth_that_would_run_code_is_refused_without_torchs_advice(tmp_path: Path):
    path = tmp_path / "evil.pth"
    torch.save({"weight": _Calls()}, path)
    with pytest.raises(CheckpointError, match=r"evil\.pth: cannot read Net weights") as caught:
        read_state_dict(path, net="Net", example=EXAMPLE)
    message = str(caught.value)
    assert "system" in message and "\n" not in message
    assert "weights_only" not in message and "safe_globals" not in message


def test_unreadable_files_and_non_tensor_dicts_are_refused(tmp_path: Path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match=r"junk\.pth: cannot read Net weights"):
        read_state_dict(junk, net="Net", example=EXAMPLE)
    numbers = tmp_path / "numbers.pth"
    torch.save({"weight": 3}, numbers)
    with pytest.raises(CheckpointError, match="expected a state dict of tensors .*net-1234.pth"):
        read_state_dict(numbers, net="Net", example=EXAMPLE)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda sd: sd.pop("0.bias"), r"key '0\.bias' is missing \(1 missing, 0 unexpected\)"),
        (lambda sd: sd.__setitem__("2.weight", torch.zeros(1)), r"unexpected key '2\.weight'"),
        (
            lambda sd: sd.__setitem__("0.weight", torch.zeros(2, 4)),
            r"0\.weight has shape \[2, 4\], expected \[2, 3\] for Net",
        ),
    ],
)
def test_a_state_dict_that_does_not_fit_names_the_key(tmp_path: Path, change, message: str):
    state = dict(_net().state_dict())
    change(state)
    with pytest.raises(CheckpointError, match=message):
        load_checked(_net(), state, path=tmp_path / "x.pth", net="Net")
