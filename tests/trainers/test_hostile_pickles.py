"""Hostile NVlabs pickles are refused with one sentence (exit 2), in bounded time and memory.

Each pickle is small but, read naively, asks for hours of work or gigabytes: shared
references expanded while converting settings or walking modules, a shared tuple hashed
as a dict key, a storage that declares more bytes than follow it, weights stretched from
one float. `import`, `sample` and `train --from` run in a child process with a deadline;
its peak memory (VmHWM) must stay near what a small run needs.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from bounded_run import MAX_PEAK_MB, run_lyriscope
from dataset_zips import shapes_zip
from hostile_pickles import (
    PairsDict,
    record,
    shared_lists,
    shared_module_tree,
    shared_tuples,
    snapshot,
    storage_declaring,
    stretched_generator,
    write,
)
from setfiles import write_set
from test_import import SMALL, _Call, _EasyDict, _TFNetwork, dump, random_generator, tf_networks

from lyriscope.errors import CheckpointError
from lyriscope.trainers.nvlabs_pickle import import_generator

DEPTH = 40  # 2**40 values once the sharing is followed: days of work
DEADLINE_S = 90  # Python and torch start in seconds; the refusal itself takes milliseconds

BIG = dict(  # 4096-wide mapping layers: about 550 MB of weights, all from one float
    z_dim=4096,
    c_dim=0,
    w_dim=4096,
    img_resolution=4,
    img_channels=3,
    mapping_kwargs={"num_layers": 8},
    synthesis_kwargs={"channel_base": 64, "channel_max": 16},
)


def hostile(kind: str) -> tuple[object, str]:
    """(snapshot, what the refusal says) of each kind of hostile pickle."""
    if kind == "shared-settings":
        kwargs = _EasyDict(SMALL, synthesis_kwargs=_EasyDict(resample_filter=shared_lists(DEPTH)))
        return snapshot(
            record(init_kwargs=kwargs)
        ), "more than 100,000 values in the settings of Generator"
    if kind == "shared-training-set":
        data = snapshot(record(init_kwargs=_EasyDict(SMALL)))
        data["training_set_kwargs"] = _EasyDict(path=shared_lists(DEPTH))
        return data, "more than 100,000 values in the training set settings"
    if kind == "shared-modules":
        # 28 levels: under the depth limit, 2**28 modules once the sharing is followed
        return snapshot(shared_module_tree(28)), "more than 10,000 modules in the network once"
    if kind == "shared-tuple-key":
        data = snapshot(record(init_kwargs=_EasyDict(SMALL)))
        data["training_set_kwargs"] = PairsDict([(shared_tuples(DEPTH), "hash me")])
        return data, "uses a tuple as a dictionary key"
    if kind == "shared-dtype":  # numpy's error for a bad dtype quotes it in full
        data = snapshot(record(init_kwargs=_EasyDict(SMALL)))
        data["training_set_kwargs"] = _EasyDict(dtype=_Call(np.dtype, shared_lists(DEPTH)))
        return data, "a numpy dtype is a list, not a type code"
    if kind == "shared-class-name":  # so would a message that quoted it
        G_ema = record(init_kwargs=_EasyDict(SMALL))
        G_ema.meta["class_name"] = shared_lists(DEPTH)
        return snapshot(G_ema), "a network's class name is a list, not a name"
    if kind == "storage-declares-more":
        data = snapshot(record(init_kwargs=_EasyDict(SMALL)))
        data["training_set_kwargs"] = _EasyDict(path=storage_declaring(2**29))
        return data, "a tensor storage declares 2,147,483,648 bytes but comes with 16"
    if kind == "settings-ask-for-more":  # real small tensors, settings of a big generator
        tensors = random_generator(1).state_dict()
        return snapshot(record(tensors=tensors, init_kwargs=_EasyDict(BIG))), (
            "tensor mapping.fc2.weight is missing (and 11 more)"
        )
    if kind == "stretched-weights":
        return snapshot(stretched_generator(BIG)), "values but its storage holds 1 from offset 0"
    raise ValueError(kind)


KINDS = (
    "shared-settings",
    "shared-training-set",
    "shared-modules",
    "shared-tuple-key",
    "shared-dtype",
    "shared-class-name",
    "storage-declares-more",
    "settings-ask-for-more",
    "stretched-weights",
)


@pytest.mark.parametrize("kind", KINDS)
def test_a_hostile_pickle_is_refused_in_one_sentence(kind, tmp_path):
    data, message = hostile(kind)
    path = write(data, tmp_path / "hostile.pkl")
    assert path.stat().st_size < 200_000  # small files; the one with real weights is 145 kB
    with pytest.raises(CheckpointError, match=rf"hostile\.pkl: .*{re.escape(message)}") as caught:
        import_generator(path)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("kind", "command"),
    [
        ("shared-settings", "import"),
        ("shared-training-set", "sample"),
        ("shared-tuple-key", "sample"),
        ("settings-ask-for-more", "sample"),
        ("stretched-weights", "import"),
    ],
)
def test_a_hostile_pickle_ends_in_exit_2_within_bounds(kind, command, tmp_path):
    data, message = hostile(kind)
    path = write(data, tmp_path / "hostile.pkl")
    args = {
        "import": ["import", str(path), "-o", str(tmp_path / "m.safetensors")],
        "sample": ["sample", str(path), "--seeds", "0", "-o", str(tmp_path / "images")],
    }[command]

    outcome = run_lyriscope(args, timeout_s=DEADLINE_S)

    assert outcome.code == 2, outcome.stderr[-2000:]
    assert message in outcome.stderr and len(outcome.stderr.strip().splitlines()) == 1
    assert 0 < outcome.peak_mb < MAX_PEAK_MB, outcome
    assert not (tmp_path / "m.safetensors").exists() and not (tmp_path / "images").exists()


def test_train_from_a_hostile_pickle_ends_in_exit_2_within_bounds(tmp_path):
    root = write_set(tmp_path / "set", lines=["only line"])
    (root / "data").mkdir()
    shapes_zip(root / "data" / "line-01.zip", count=4, res=32)
    data, message = hostile("shared-settings")
    path = write(data, tmp_path / "hostile.pkl")
    args = ["train", str(root), "--line", "1", "--from", str(path), "--outdir", str(tmp_path)]

    outcome = run_lyriscope([*args, "--kimg", "0.004", "--workers", "0"], timeout_s=DEADLINE_S)

    assert outcome.code == 2, outcome.stderr[-2000:]
    assert message in outcome.stderr
    assert 0 < outcome.peak_mb < MAX_PEAK_MB, outcome


def test_a_real_snapshot_still_imports(tmp_path):
    # The bounds leave room for real pickles: the importer's own snapshots load as before.
    from test_import import snapshot as real_snapshot

    path = write(
        real_snapshot(random_generator(1), random_generator(2), tmp_path), tmp_path / "s.pkl"
    )
    assert import_generator(path).G.img_resolution == SMALL["img_resolution"]


@pytest.mark.parametrize("where", ["components", "static_kwargs"])
def test_a_tensorflow_pickle_with_shared_references_is_refused(tmp_path, where):
    Gs = tf_networks(random_generator(4))
    if where == "components":  # every component holds the same one twice, 28 levels down
        shared = Gs._state["components"]["mapping"]
        for _ in range(28):
            shared = _TFNetwork({**Gs._state, "components": {"a": shared, "b": shared}})
        Gs._state["components"]["mapping"] = shared
        message = "more than 10,000 modules in the TensorFlow network"
    else:
        Gs._state["static_kwargs"] = {
            **Gs._state["static_kwargs"],
            "resample_kernel": shared_lists(DEPTH),
        }
        message = "more than 100,000 values in the TensorFlow network's settings"
    path = dump(Gs, tmp_path / "tf.pkl")
    with pytest.raises(CheckpointError, match=re.escape(message)):
        import_generator(path)
