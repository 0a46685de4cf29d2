"""Importing NVlabs pickles: PyTorch- and TensorFlow-era layouts, numpy 1/2, both storage layouts, and
pickles that would run code.

The pickles are written here the way NVlabs' code writes them (torch_utils.persistence and
dnnlib.tflib.network), from our Generator with random weights, without NVlabs' code: a pure
Python pickler writes the globals under the names NVlabs' modules have.
"""

from __future__ import annotations

import io
import math
import os
import pickle
import types
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from lyriscope.cli import main
from lyriscope.errors import CheckpointError
from lyriscope.trainers.checkpoint import load_model, read_model_config
from lyriscope.trainers.networks import Generator
from lyriscope.trainers.nvlabs_pickle import import_generator

SMALL = dict(
    z_dim=32,
    c_dim=0,
    w_dim=32,
    img_resolution=32,
    img_channels=3,
    mapping_kwargs={"num_layers": 2},
    synthesis_kwargs={"channel_base": 128, "channel_max": 32},
)


# -- writers of NVlabs-layout pickles -----------------------------------------------------------


def _never_called(*args):  # only its (renamed) global is written; unpickling it is our job
    raise AssertionError("stand-in called")


class _EasyDict(dict):
    """Pickles like dnnlib.util.EasyDict (a dict subclass)."""


class _Persistent:
    """Pickles like an NVlabs @persistent network: _reconstruct_persistent_obj(meta)."""

    def __init__(self, meta: dict) -> None:
        self.meta = meta

    def __reduce__(self):
        return (_never_called, (self.meta,))


class _TFNetwork:
    """Pickles like dnnlib.tflib.network.Network: NEWOBJ, then its __getstate__ dict."""

    def __init__(self, state: dict) -> None:
        self._state = state

    def __getstate__(self) -> dict:
        return self._state


class NVlabsPickler(pickle._Pickler):
    """Writes chosen objects under other global names (the modules NVlabs' pickles refer to)."""

    def __init__(
        self,
        file,
        protocol: int,
        *,
        numpy_major: int,
        storage: str,
        extra_names: dict | None = None,
    ) -> None:
        super().__init__(file, protocol)
        self.names = {
            id(_never_called): ("torch_utils.persistence", "_reconstruct_persistent_obj"),
            id(_EasyDict): ("dnnlib.util", "EasyDict"),
            id(_TFNetwork): ("dnnlib.tflib.network", "Network"),
        }
        core = "numpy.core" if numpy_major == 1 else "numpy._core"
        self.names[id(np._core.multiarray.scalar)] = (f"{core}.multiarray", "scalar")
        self.names[id(np._core.multiarray._reconstruct)] = (f"{core}.multiarray", "_reconstruct")
        self.names.update(extra_names or {})
        self.storage = storage

    def reducer_override(self, obj):
        if self.storage == "zipfile" and isinstance(obj, torch.TypedStorage):
            # As a torch that saves storages in the zipfile layout would write them.
            buffer = io.BytesIO()
            torch.save(obj, buffer, _use_new_zipfile_serialization=True)
            return (torch.storage._load_from_bytes, (buffer.getvalue(),))
        return NotImplemented

    def save_global(self, obj, name=None):
        target = self.names.get(id(obj))
        if target is None:
            return super().save_global(obj, name)
        module, qualname = target
        if self.proto >= 4:
            self.save(module)
            self.save(qualname)
            self.write(pickle.STACK_GLOBAL)
        else:
            self.write(pickle.GLOBAL + f"{module}\n{qualname}\n".encode())
        self.memoize(obj)

    # The base class dispatches plain functions to its own save_global, bypassing the override.
    dispatch = {**pickle._Pickler.dispatch, types.FunctionType: save_global}


def dump(
    obj,
    path: Path,
    *,
    protocol: int = 3,
    numpy_major: int = 1,
    storage: str = "legacy",
    extra_names: dict | None = None,
) -> Path:
    with open(path, "wb") as f:
        NVlabsPickler(
            f, protocol, numpy_major=numpy_major, storage=storage, extra_names=extra_names
        ).dump(obj)
    return path


MODULE_SRC_MARKER = "module_src_ran.txt"


def persistent(
    module: torch.nn.Module, *, module_src: str, init_kwargs: dict | None = None
) -> _Persistent:
    """What torch_utils.persistence pickles for `module`: class name, source, instance __dict__."""
    state = {
        key: value
        for key, value in module.__dict__.items()
        if isinstance(value, bool | int | float | str | type(None) | set | OrderedDict)
    }
    state["_parameters"] = OrderedDict(
        (name, torch.nn.Parameter(p.detach().clone(), requires_grad=False))
        for name, p in module._parameters.items()
    )
    state["_buffers"] = OrderedDict((n, b.detach().clone()) for n, b in module._buffers.items())
    state["_modules"] = OrderedDict(
        (name, persistent(child, module_src=module_src)) for name, child in module._modules.items()
    )
    state["weight_gain_np"] = np.float32(0.25)  # a numpy scalar among the plain attributes
    state["_init_args"] = ()
    state["_init_kwargs"] = _EasyDict(init_kwargs or {})
    return _Persistent(
        dict(
            type="class",
            version=6,
            module_src=module_src,
            class_name=type(module).__name__,
            state=state,
        )
    )


def _as_easydicts(kwargs: dict) -> _EasyDict:
    return _EasyDict({k: _as_easydicts(v) if isinstance(v, dict) else v for k, v in kwargs.items()})


def snapshot(G: torch.nn.Module, G_ema: torch.nn.Module, tmp_path: Path) -> dict:
    """An NVlabs network-snapshot dict: networks as persistent objects, kwargs as EasyDicts."""
    module_src = (
        f"import pathlib\npathlib.Path({str(tmp_path / MODULE_SRC_MARKER)!r})"
        f".write_text('executed')\nclass Generator: pass\n"
    )
    kwargs = _as_easydicts(G.init_kwargs)
    kwargs["img_resolution"] = np.int64(kwargs["img_resolution"])  # numpy ints do occur
    return {
        "G": persistent(G, module_src=module_src, init_kwargs=kwargs),
        "D": None,
        "G_ema": persistent(G_ema, module_src=module_src, init_kwargs=kwargs),
        "augment_pipe": None,
        "training_set_kwargs": _EasyDict(
            class_name="training.dataset.ImageFolderDataset",
            path="~/datasets/line-01.zip",
            resolution=np.int64(32),
            use_labels=False,
            max_size=np.int64(120),
        ),
    }


def random_generator(seed: int, **overrides) -> torch.nn.Module:
    """A small Generator with every tensor random (noise strengths, biases and w_avg too)."""
    config = {**SMALL, **overrides}
    torch.manual_seed(seed)
    G = Generator(**config)
    with torch.no_grad():
        for name, tensor in G.state_dict().items():
            if not name.endswith("resample_filter"):
                tensor.copy_(
                    torch.randn_like(tensor) * 0.5 + (1.0 if "affine.bias" in name else 0.0)
                )
    return G.eval().requires_grad_(False)


def images(G: torch.nn.Module, *, seed: int = 0, psi: float = 0.7) -> torch.Tensor:
    z = torch.from_numpy(np.random.RandomState(seed).randn(2, G.z_dim)).float()
    c = torch.zeros(2, G.c_dim)
    if G.c_dim:
        c[:, 0] = 1
    return G(z, c, truncation_psi=psi, noise_mode="const")


@pytest.fixture(scope="module")
def generators() -> tuple[torch.nn.Module, torch.nn.Module]:
    return random_generator(1), random_generator(2)


# -- PyTorch-era pickles ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("protocol", "numpy_major", "storage"),
    [
        (3, 1, "legacy"),  # torch 1.7-1.x under Python 3.7 and numpy 1.x
        (4, 2, "legacy"),  # torch 2.x under Python 3.8+ and numpy 2.x
        (4, 1, "zipfile"),  # storages in the zipfile layout
    ],
)
def test_imported_generator_draws_the_same_images(
    generators, tmp_path, protocol, numpy_major, storage
):
    G, G_ema = generators
    path = dump(
        snapshot(G, G_ema, tmp_path),
        tmp_path / "network-snapshot-000120.pkl",
        protocol=protocol,
        numpy_major=numpy_major,
        storage=storage,
    )
    raw = path.read_bytes()
    assert (b"numpy.core.multiarray" in raw, b"numpy._core.multiarray" in raw) == (
        numpy_major == 1,
        numpy_major == 2,
    )
    assert (b"PK\x03\x04" in raw) == (storage == "zipfile")
    assert b"torch_utils.persistence" in raw and b"dnnlib.util" in raw

    imported = import_generator(path)

    torch.testing.assert_close(images(imported.G), images(G_ema), rtol=0, atol=0)
    assert imported.kimg == 120.0
    assert imported.G.init_kwargs == G_ema.init_kwargs
    assert imported.info["training_set_kwargs"]["max_size"] == 120
    assert not (tmp_path / MODULE_SRC_MARKER).exists()  # the embedded source never ran


def test_which_picks_the_training_generator(generators, tmp_path):
    G, G_ema = generators
    path = dump(snapshot(G, G_ema, tmp_path), tmp_path / "snap.pkl")

    imported = import_generator(path, which="G")

    torch.testing.assert_close(images(imported.G), images(G), rtol=0, atol=0)
    assert not torch.equal(images(imported.G), images(G_ema))


def test_stylegan3_repository_stylegan2_pickle_imports(generators, tmp_path):
    G, G_ema = generators
    data = snapshot(G, G_ema, tmp_path)
    # stylegan3's networks_stylegan2.Generator takes synthesis options as top-level **kwargs.
    kwargs = data["G_ema"].meta["state"]["_init_kwargs"]
    kwargs.update(kwargs.pop("synthesis_kwargs"), fused_modconv_default="inference_only")
    path = dump(data, tmp_path / "sg3.pkl", protocol=4, numpy_major=2)

    imported = import_generator(path)

    assert imported.G.init_kwargs["synthesis_kwargs"] == G_ema.init_kwargs["synthesis_kwargs"]
    torch.testing.assert_close(images(imported.G), images(G_ema), rtol=0, atol=0)


def test_stylegan3_generator_is_named_as_such(generators, tmp_path):
    data = snapshot(*generators, tmp_path)
    synthesis = data["G_ema"].meta["state"]["_modules"]["synthesis"].meta["state"]
    synthesis["_modules"]["input"] = persistent(torch.nn.Linear(2, 2), module_src="")
    path = dump(data, tmp_path / "sg3.pkl")
    with pytest.raises(CheckpointError, match="StyleGAN3 .alias-free. generator"):
        import_generator(path)


def test_conditional_generator_imports_its_embedding(tmp_path):
    G = random_generator(3, c_dim=4)
    path = dump(snapshot(G, G, tmp_path), tmp_path / "cond.pkl", protocol=4)

    imported = import_generator(path)

    assert imported.G.c_dim == 4
    torch.testing.assert_close(images(imported.G), images(G), rtol=0, atol=0)


def test_cli_import_writes_a_model_that_loads(generators, tmp_path):
    G, G_ema = generators
    pkl = dump(snapshot(G, G_ema, tmp_path), tmp_path / "network-snapshot-000400.pkl")
    out = tmp_path / "models" / "line-01.safetensors"

    assert main(["import", str(pkl), "-o", str(out)]) == 0

    config = read_model_config(out)
    assert (config["img_resolution"], config["kimg"], config["num_ws"]) == (32, 400.0, G.num_ws)
    assert config["extra"]["imported_from"]["source"] == pkl.name
    torch.testing.assert_close(images(load_model(out)), images(G_ema), rtol=0, atol=0)


def test_sample_reads_a_pickle_directly(generators, tmp_path):
    G, G_ema = generators
    pkl = dump(snapshot(G, G_ema, tmp_path), tmp_path / "snap.pkl")
    from PIL import Image

    assert main(["sample", str(pkl), "--seeds", "5", "--device", "cpu", "-o", str(tmp_path)]) == 0

    z = torch.from_numpy(np.random.RandomState(5).randn(1, G_ema.z_dim)).float()
    want = G_ema(z, torch.zeros(1, 0), noise_mode="const").permute(0, 2, 3, 1) * 127.5 + 128
    want = want.clamp(0, 255).to(torch.uint8)[0].numpy()
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "seed0005.png")), want)


# -- refusals -----------------------------------------------------------------------------------


class _Call:
    """Pickles as a call of `func(*args)`: what a malicious pickle does."""

    def __init__(self, func, *args) -> None:
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


@pytest.mark.parametrize(
    "make_call",
    [
        lambda marker: _Call(os.system, f"echo pwned > {marker}"),
        lambda marker: _Call(eval, f"open({str(marker)!r}, 'w').write('pwned')"),
        lambda marker: _Call(__import__("subprocess").Popen, ["touch", str(marker)]),
        lambda marker: _Call(getattr, __import__("pathlib").Path(marker), "touch"),
    ],
    ids=["os.system", "builtins.eval", "subprocess.Popen", "builtins.getattr"],
)
def test_pickle_that_runs_code_is_refused_without_effect(generators, tmp_path, make_call):
    marker = tmp_path / "pwned.txt"
    data = snapshot(*generators, tmp_path)
    data["training_set_kwargs"]["path"] = make_call(marker)  # hidden deep inside a real snapshot
    path = dump(data, tmp_path / "evil.pkl")

    with pytest.raises(CheckpointError, match=r"evil\.pkl: refused to load: the pickle asks for"):
        import_generator(path)
    assert not marker.exists()


def test_storage_bytes_that_hold_code_are_refused(generators, tmp_path):
    marker = tmp_path / "pwned.txt"
    evil_storage = io.BytesIO()
    torch.save(
        _Call(os.system, f"touch {marker}"), evil_storage, _use_new_zipfile_serialization=False
    )
    data = snapshot(*generators, tmp_path)
    data["training_set_kwargs"]["path"] = _Call(
        torch.storage._load_from_bytes, evil_storage.getvalue()
    )
    path = dump(data, tmp_path / "evil.pkl")

    with pytest.raises(
        CheckpointError, match=r"evil\.pkl: a tensor storage is not plain data"
    ) as caught:
        import_generator(path)
    assert not marker.exists()
    assert "system" in str(caught.value)  # what was refused
    assert "weights_only" not in str(caught.value)  # never torch's advice to load it unsafely


def test_cli_reports_a_refused_pickle_in_one_line(tmp_path, capsys):
    marker = tmp_path / "pwned.txt"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(_Call(os.system, f"touch {marker}")))

    assert main(["import", str(path), "-o", str(tmp_path / "m.safetensors")]) == 2

    err = capsys.readouterr().err
    assert "refused to load" in err and "system" in err and len(err.strip().splitlines()) == 1
    assert not marker.exists() and not (tmp_path / "m.safetensors").exists()


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "not a readable network pickle"),
        (b"\x80\x03}q\x00(X\x01\x00\x00", "not a readable network pickle"),
        (b"hello, I am not a pickle", "not a readable network pickle"),
    ],
)
def test_damaged_pickle_gives_one_clear_error(tmp_path, content, match):
    path = tmp_path / "broken.pkl"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=rf"broken\.pkl: {match}"):
        import_generator(path)


def test_truncated_snapshot_is_reported(generators, tmp_path):
    path = dump(snapshot(*generators, tmp_path), tmp_path / "snap.pkl")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"snap\.pkl: not a readable network pickle"):
        import_generator(path)


def test_snapshot_without_generator_names_what_it_found(tmp_path):
    path = dump({"D": None, "augment_pipe": None}, tmp_path / "d.pkl")
    with pytest.raises(CheckpointError, match=r"no 'G_ema' network .*'D'"):
        import_generator(path)


def test_network_of_other_class_is_not_imported(generators, tmp_path):
    data = snapshot(*generators, tmp_path)
    data["G_ema"].meta["class_name"] = "Discriminator"
    path = dump(data, tmp_path / "snap.pkl")
    with pytest.raises(CheckpointError, match="'Discriminator', not a StyleGAN2 Generator"):
        import_generator(path)


def test_tensor_of_wrong_shape_is_named(generators, tmp_path):
    data = snapshot(*generators, tmp_path)
    fc0 = data["G_ema"].meta["state"]["_modules"]["mapping"].meta["state"]["_modules"]["fc0"]
    fc0.meta["state"]["_parameters"]["weight"] = torch.nn.Parameter(torch.zeros(3, 3))
    path = dump(data, tmp_path / "snap.pkl")
    with pytest.raises(CheckpointError, match=r"mapping\.fc0\.weight has shape \[3, 3\]"):
        import_generator(path)


# -- TensorFlow-era pickles ---------------------------------------------------------------------


def _tf_conv(w: torch.Tensor, *, up: bool = False) -> np.ndarray:
    a = w.numpy().transpose(2, 3, 1, 0)  # [out, in, kh, kw] -> [kh, kw, in, out]
    return np.ascontiguousarray(a[::-1, ::-1] if up else a)


def tf_networks(G: torch.nn.Module) -> _TFNetwork:
    """A TF Gs holding G's weights under TF names (the published converter's facts, inverted)."""
    sd = {k: v.detach().clone() for k, v in G.state_dict().items()}
    mapping, synthesis = [], []
    for i in range(G.init_kwargs["mapping_kwargs"]["num_layers"]):
        mapping += [
            (f"Dense{i}/weight", sd[f"mapping.fc{i}.weight"].numpy().T.copy()),
            (f"Dense{i}/bias", sd[f"mapping.fc{i}.bias"].numpy()),
        ]
    synthesis.append(("4x4/Const/const", sd["synthesis.b4.const"].numpy()[None]))
    noise = 0
    for res in [2**k for k in range(2, int(math.log2(G.img_resolution)) + 1)]:
        layers = [("conv1", "Conv")] if res == 4 else [("conv0", "Conv0_up"), ("conv1", "Conv1")]
        for ours, theirs in [*layers, ("torgb", "ToRGB")]:
            p = f"synthesis.b{res}.{ours}."
            synthesis += [
                (f"{res}x{res}/{theirs}/weight", _tf_conv(sd[p + "weight"], up=ours == "conv0")),
                (f"{res}x{res}/{theirs}/bias", sd[p + "bias"].numpy()),
                (f"{res}x{res}/{theirs}/mod_weight", sd[p + "affine.weight"].numpy().T.copy()),
                (f"{res}x{res}/{theirs}/mod_bias", sd[p + "affine.bias"].numpy() - 1),
            ]
            if ours != "torgb":
                synthesis += [
                    (f"{res}x{res}/{theirs}/noise_strength", sd[p + "noise_strength"].numpy()),
                    (f"noise{noise}", sd[p + "noise_const"].numpy()[None, None]),
                ]
                noise += 1
    kwargs = G.init_kwargs
    static_kwargs = dict(
        num_channels=3,
        resolution=kwargs["img_resolution"],
        label_size=0,
        latent_size=kwargs["z_dim"],
        dlatent_size=kwargs["w_dim"],
        mapping_layers=kwargs["mapping_kwargs"]["num_layers"],
        fmap_base=kwargs["synthesis_kwargs"]["channel_base"] // 2,
        fmap_max=kwargs["synthesis_kwargs"]["channel_max"],
        truncation_psi=0.5,
    )

    def net(name, variables, components=None):
        return _TFNetwork(
            dict(
                version=4,
                name=name,
                static_kwargs=static_kwargs,
                components=components or {},
                build_module_src="import os\n",
                build_func_name=name,
                variables=variables,
            )
        )

    return net(
        "G",
        [("dlatent_avg", sd["mapping.w_avg"].numpy()), ("lod", np.float32(0))],
        {"mapping": net("G_mapping", mapping), "synthesis": net("G_synthesis", synthesis)},
    )


@pytest.mark.parametrize("layout", ["G, D, Gs", "Gs"])
def test_tensorflow_pickle_imports_with_the_same_images(tmp_path, layout):
    G = random_generator(4)
    Gs = tf_networks(G)
    data = (
        (tf_networks(random_generator(5)), _TFNetwork(dict(version=4, name="D")), Gs)
        if layout == "G, D, Gs"
        else Gs
    )
    path = dump(data, tmp_path / "stylegan2-tf.pkl", protocol=3, numpy_major=1)

    imported = import_generator(path)

    assert imported.info["format"] == "tensorflow"
    assert imported.G.init_kwargs["synthesis_kwargs"] == G.init_kwargs["synthesis_kwargs"]
    torch.testing.assert_close(images(imported.G), images(G), rtol=1e-5, atol=1e-5)


def test_tensorflow_pickle_with_unknown_setting_is_refused(tmp_path):
    Gs = tf_networks(random_generator(4))
    Gs._state["static_kwargs"] = {**Gs._state["static_kwargs"], "fmap_decay": 0.5}
    path = dump(Gs, tmp_path / "tf.pkl")
    with pytest.raises(CheckpointError, match="'fmap_decay'"):
        import_generator(path)


def test_tensorflow_pickle_missing_a_variable_names_it(tmp_path):
    Gs = tf_networks(random_generator(4))
    synthesis = Gs._state["components"]["synthesis"]
    synthesis._state["variables"] = [v for v in synthesis._state["variables"] if v[0] != "noise3"]
    path = dump(Gs, tmp_path / "tf.pkl")
    with pytest.raises(
        CheckpointError, match=r"no variable synthesis/noise3 .*b16\.conv0\.noise_const"
    ):
        import_generator(path)
