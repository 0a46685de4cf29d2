"""TensorFlow-era StyleGAN2 / StyleGAN2-ADA pickles converted to our Generator, without TensorFlow.

A TF pickle holds (G, D, Gs) or a single Gs, each a dnnlib.tflib.network.Network whose
state has `static_kwargs`, nested `components` (mapping, synthesis) and `variables` as
(name, numpy array) pairs. lyriscope.trainers.nvlabs_pickle's unpickler reads them into
this module's `TFNetwork` records; this module maps the kwargs and the variable names to
ours, following the published converter: dense weights are transposed, conv weights go
from [kh, kw, in, out] to [out, in, kh, kw] (up-sampling ones flipped in space first), the
constant drops its batch axis, PyTorch affine.bias = TF mod_bias + 1, dlatent_avg is
mapping.w_avg.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from lyriscope.errors import CheckpointError
from lyriscope.trainers.checkpoint import build_generator, load_state_checked
from lyriscope.trainers.pickle_limits import (
    brief,
    module_budget,
    plain_settings,
    settings_budget,
)

MIN_VERSION = 4  # older TF pickles (StyleGAN1) have another architecture
# TF static kwargs that only steer TF's graph at run time; they change no weights.
_IGNORED_KWARGS = ("truncation_psi", "truncation_cutoff", "style_mixing_prob", "structure")


class TFNetwork:
    """A dnnlib.tflib.network.Network of a TensorFlow-era pickle, as data (its __setstate__ state)."""

    def __init__(self) -> None:
        self.state: dict[str, Any] = {}

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise CheckpointError(
                f"a TensorFlow network's state is a {type(state).__name__}, not a dict"
            )
        self.state = state

    @property
    def name(self) -> str:
        return str(self.state.get("name", ""))


def generator_kwargs_from_tf(
    static_kwargs: dict[str, Any], *, source: str | os.PathLike[str]
) -> dict[str, Any]:
    """Our Generator's constructor kwargs from a TF generator's static kwargs (defaults omitted)."""
    known: set[str] = set(_IGNORED_KWARGS)

    def kwarg(tf_name: str, default: Any) -> Any:
        known.add(tf_name)
        value = static_kwargs.get(tf_name)
        return default if value is None else value

    kwargs: dict[str, Any] = {
        "z_dim": int(kwarg("latent_size", 512)),
        "c_dim": int(kwarg("label_size", 0)),
        "w_dim": int(kwarg("dlatent_size", 512)),
        "img_resolution": int(kwarg("resolution", 1024)),
        "img_channels": int(kwarg("num_channels", 3)),
    }
    # (our name, value from TF, our default: a value equal to it is left out of the config)
    mapping = _non_default(
        [
            ("num_layers", kwarg("mapping_layers", 8), 8),
            ("embed_features", kwarg("label_fmaps", None), None),
            ("layer_features", kwarg("mapping_fmaps", None), None),
            ("activation", kwarg("mapping_nonlinearity", "lrelu"), "lrelu"),
            ("lr_multiplier", kwarg("mapping_lrmul", 0.01), 0.01),
        ]
    )
    synthesis = _non_default(
        [
            ("channel_base", int(kwarg("fmap_base", 16384)) * 2, 32768),  # TF counts fmap_base / 2
            ("channel_max", kwarg("fmap_max", 512), 512),
            ("num_fp16_res", kwarg("num_fp16_res", 0), 0),
            ("conv_clamp", kwarg("conv_clamp", None), None),
            ("architecture", kwarg("architecture", "skip"), "skip"),
            ("resample_filter", list(kwarg("resample_kernel", [1, 3, 3, 1])), [1, 3, 3, 1]),
            ("use_noise", kwarg("use_noise", True), True),
            ("activation", kwarg("nonlinearity", "lrelu"), "lrelu"),
        ]
    )
    kwarg("w_avg_beta", None)  # only steers training
    unknown = sorted(set(static_kwargs) - known)
    if unknown:
        raise CheckpointError(
            f"{source}: the TensorFlow generator has the setting {unknown[0]!r}, "
            f"which the StyleGAN2 converter does not know"
        )
    if synthesis.get("architecture", "skip") != "skip":
        raise CheckpointError(
            f"{source}: the TensorFlow generator uses the "
            f"{brief(synthesis['architecture'])} architecture; only 'skip' is imported"
        )
    if mapping:
        kwargs["mapping_kwargs"] = mapping
    if synthesis:
        kwargs["synthesis_kwargs"] = synthesis
    return kwargs


def tf_variables(network: TFNetwork) -> dict[str, np.ndarray]:
    """All variables of a TF network and its components by path: "mapping/Dense0/weight" -> array."""
    found: dict[str, np.ndarray] = {}
    budget = module_budget("the TensorFlow network")  # shared ones count each time

    def collect(prefix: str, net: TFNetwork) -> None:
        budget.visit(prefix.count("/"))
        for name, value in net.state.get("variables") or []:
            if not isinstance(name, str):
                raise CheckpointError(f"a TensorFlow variable is named by {brief(name)}")
            found[prefix + name] = value
        for name, component in (net.state.get("components") or {}).items():
            if not isinstance(component, TFNetwork):
                raise CheckpointError(
                    f"component {prefix}{name} is a {type(component).__name__}, "
                    f"not a TensorFlow network"
                )
            collect(f"{prefix}{name}/", component)

    collect("", network)
    return found


def _noise_index(res: int, conv: int) -> int:
    # TF numbers the synthesis noise inputs 0, 1, 2, ... over b4.conv1, b8.conv0, b8.conv1, ...
    return 2 * int(math.log2(res)) - 5 + conv


def _dense(a: np.ndarray) -> np.ndarray:
    return a.transpose()


def _conv(a: np.ndarray) -> np.ndarray:
    return a.transpose(3, 2, 0, 1)  # [kh, kw, in, out] -> [out, in, kh, kw]


def _conv_up(a: np.ndarray) -> np.ndarray:
    return a[::-1, ::-1].transpose(3, 2, 0, 1)  # TF's transposed conv has its kernel flipped


def _layer_rules(ours: str, theirs: str) -> list[tuple[str, Callable[..., tuple[str, Any]]]]:
    """Rules for one modulated layer: (our name pattern, r -> (TF name, converter))."""
    conv = _conv_up if ours == "conv0" else _conv
    return [
        (
            rf"synthesis\.b(\d+)\.{ours}\.weight",
            lambda r: (f"synthesis/{r}x{r}/{theirs}/weight", conv),
        ),
        (rf"synthesis\.b(\d+)\.{ours}\.bias", lambda r: (f"synthesis/{r}x{r}/{theirs}/bias", None)),
        (
            rf"synthesis\.b(\d+)\.{ours}\.noise_strength",
            lambda r: (f"synthesis/{r}x{r}/{theirs}/noise_strength", None),
        ),
        (
            rf"synthesis\.b(\d+)\.{ours}\.affine\.weight",
            lambda r: (f"synthesis/{r}x{r}/{theirs}/mod_weight", _dense),
        ),
        (
            rf"synthesis\.b(\d+)\.{ours}\.affine\.bias",
            lambda r: (f"synthesis/{r}x{r}/{theirs}/mod_bias", lambda a: a + 1),
        ),
    ]


def _rules() -> list[tuple[re.Pattern[str], Callable[..., tuple[str, Any]] | None]]:
    """Our state-dict names -> the TF variable and how to convert it (None: keep ours)."""
    rules: list[tuple[str, Any]] = [
        (r"mapping\.w_avg", lambda: ("dlatent_avg", None)),
        (r"mapping\.embed\.weight", lambda: ("mapping/LabelEmbed/weight", _dense)),
        (r"mapping\.embed\.bias", lambda: ("mapping/LabelEmbed/bias", None)),
        (r"mapping\.fc(\d+)\.weight", lambda i: (f"mapping/Dense{i}/weight", _dense)),
        (r"mapping\.fc(\d+)\.bias", lambda i: (f"mapping/Dense{i}/bias", None)),
        (r"synthesis\.b4\.const", lambda: ("synthesis/4x4/Const/const", lambda a: a[0])),
        (
            r"synthesis\.b(\d+)\.conv0\.noise_const",
            lambda r: (f"synthesis/noise{_noise_index(int(r), 0)}", lambda a: a[0, 0]),
        ),
        (
            r"synthesis\.b(\d+)\.conv1\.noise_const",
            lambda r: (f"synthesis/noise{_noise_index(int(r), 1)}", lambda a: a[0, 0]),
        ),
    ]
    # b4 has a single conv, called Conv in TF; later blocks have Conv0_up and Conv1.
    rules += [(p.replace(r"b(\d+)", "b(4)"), f) for p, f in _layer_rules("conv1", "Conv")]
    rules += _layer_rules("conv0", "Conv0_up") + _layer_rules("conv1", "Conv1")
    rules += _layer_rules("torgb", "ToRGB")
    rules += [(r".*\.resample_filter", None)]
    return [(re.compile(pattern), fn) for pattern, fn in rules]


def generator_from_tf(network: TFNetwork, *, source: str | os.PathLike[str]) -> torch.nn.Module:
    """Our Generator holding the weights of a TF StyleGAN2 generator (Gs or G)."""
    version = network.state.get("version")
    if not isinstance(version, int) or version < MIN_VERSION:
        raise CheckpointError(
            f"{source}: TensorFlow network pickle version {brief(version)} is too old "
            f"(StyleGAN2 pickles have version {MIN_VERSION} or later)"
        )
    static_kwargs = plain_settings(
        network.state.get("static_kwargs") or {},
        budget=settings_budget("the TensorFlow network's settings"),
    )
    if not isinstance(static_kwargs, dict):
        raise CheckpointError(f"{source}: the TensorFlow network's settings are not a dict")
    G = build_generator(generator_kwargs_from_tf(static_kwargs, source=source), source=source)
    variables = tf_variables(network)
    rules = _rules()
    state: dict[str, torch.Tensor] = {}
    for name, ours in G.state_dict().items():
        state[name] = _converted(name, ours, variables, rules, source=source)
    load_state_checked(G, state, source=source)
    return G.eval().requires_grad_(False)


def _converted(
    name: str,
    ours: torch.Tensor,
    variables: dict[str, np.ndarray],
    rules: list[tuple[re.Pattern[str], Any]],
    *,
    source: str | os.PathLike[str],
) -> torch.Tensor:
    for pattern, fn in rules:
        match = pattern.fullmatch(name)
        if match is None:
            continue
        if fn is None:
            return ours
        tf_name, convert = fn(*match.groups())
        if tf_name not in variables:
            raise CheckpointError(
                f"{source}: the TensorFlow network has no variable {tf_name} (it would fill {name})"
            )
        value = variables[tf_name]
        if not isinstance(value, np.ndarray):  # asarray of nested lists could be made to explode
            raise CheckpointError(
                f"{source}: variable {tf_name} is a {type(value).__name__}, not an array"
            )
        if value.dtype.hasobject:
            raise CheckpointError(f"{source}: variable {tf_name} holds objects, not numbers")
        if convert is not None:
            value = convert(value)
        tensor = torch.from_numpy(np.array(value, order="C")).to(ours.dtype)  # a copy; keeps 0-d
        if tuple(tensor.shape) != tuple(ours.shape):
            raise CheckpointError(
                f"{source}: variable {tf_name} gives {name} the shape "
                f"{list(tensor.shape)}, but the architecture needs {list(ours.shape)}"
            )
        return tensor
    raise CheckpointError(
        f"{source}: lyriscope does not know which TensorFlow variable fills {name}"
    )


def _non_default(entries: list[tuple[str, Any, Any]]) -> dict[str, Any]:
    return {name: value for name, value, default in entries if value != default}
