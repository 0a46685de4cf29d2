"""The fast synthesis path: ws -> uint8 frames by a precomputed plan of G.synthesis.

The reference path is the published one, `G.synthesis(ws, noise_mode='const',
force_fp32=True)`. The fast path gives the same images (tests hold it to a tolerance) for
less work per frame:
- a plan built once per model: style affines with their gains folded in, demodulation from
  precomputed squared weight sums, noise and bias pre-scaled by the activation gain, so a
  layer is conv -> two in-place adds -> in-place leaky ReLU;
- on CUDA: float16 (or bfloat16) activations where the image stays within tolerance of the
  reference (checked when the plan is built), channels-last tensors, and the whole frame
  captured as one CUDA graph with static input and output buffers, replayed on a dedicated
  stream (no allocations, host syncs or launches per layer); or torch.compile instead;
- each 2x up-conv as a transposed conv plus a FIR pass, or as one 3x3 conv with 4x the
  outputs and a pixel shuffle (the FIR folded in): picked per shape, or forced everywhere by
  FastOptions.subpixel;
- per layer shape, the fastest of: the modulated conv as one grouped conv with per-sample
  weights or as one shared-weight conv over the batch between scalings ("scaled"); the
  epilogue as PyTorch ops or one Triton kernel; the FIR after an up-conv fused or in
  PyTorch. On CUDA each shape is timed once and the choice cached (picker.LayerPicker);
- HostFrames: double-buffered pinned host memory for the GL upload, one event per buffer.
Whatever cannot run (no CUDA, a capture or compile error, an architecture the plan does not
cover, precision out of tolerance) falls back to the next simpler path with one warning.

Example:
    >>> fast = FastSynthesis(G, device=torch.device("cuda"), batch=1)
    >>> frames = fast(ws)  # uint8 [1, H, W, 3] on the device, valid until the next call
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from lyriscope.engine.synth.picker import (
    LayerImpl,
    LayerPicker,
    MakeRun,
    ShapeKey,
    triton_usable,
)
from lyriscope.trainers.ops import upfirdn2d
from lyriscope.trainers.ops.conv2d_resample import conv2d_resample

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
HOMOGENEOUS = {"linear": 1.0, "relu": 0.0, "lrelu": 0.2}  # act(g*x) = g*act(x) for g > 0: slope < 0
PROBE_SEED = 1234  # z of the tolerance probe
DTYPE_NAMES = {dtype: name for name, dtype in DTYPES.items()}
PICK_MODES = ("auto", "time", "off")


class FastPathWarning(RuntimeWarning):
    """A speed-up could not run; a slower path that gives the same images is used instead."""


@dataclass(frozen=True)
class FastOptions:
    """How the fast path may speed synthesis up; every speed-up falls back when it cannot run."""

    dtype: str = "auto"  # "auto": fp16 on CUDA, fp32 on CPU; or "fp32", "fp16", "bf16"
    channels_last: bool | None = None  # NHWC activations; None: on CUDA only
    cuda_graph: bool = True  # capture the frame as one CUDA graph (CUDA only)
    compile: bool = False  # torch.compile the plan instead of a graph capture
    subpixel: bool = False  # True: every up-conv as one 3x3 conv + pixel shuffle (4x the
    #                         MACs, no FIR pass); False: the picker times it per shape against
    #                         transposed conv + FIR where it times (CUDA), else transposed
    noise_mode: str = "const"  # "const" (the reference's deterministic noise) or "none"
    max_abs_error: float = 0.1  # reduced precision may differ at most this on [-1, 1] pixels
    mean_abs_error: float = 0.005  # ... and on average at most this (≈ 0.3 uint8 levels)
    pick: str = "auto"  # layer forms: "auto": timed per shape on CUDA (cached), grouped conv +
    #                     PyTorch epilogue elsewhere; "time": timed here too; "off": never
    layer: LayerImpl | None = None  # every layer this way (tests, experiments); None: `pick`

    def __post_init__(self) -> None:
        if self.dtype != "auto" and self.dtype not in DTYPES:
            raise ValueError(f"dtype must be 'auto' or one of {sorted(DTYPES)}, not {self.dtype!r}")
        if self.noise_mode not in ("const", "none"):
            raise ValueError(
                f"the fast path keeps frames deterministic: noise_mode 'const' or "
                f"'none', not {self.noise_mode!r}"
            )
        if self.pick not in PICK_MODES:
            raise ValueError(f"pick must be one of {PICK_MODES}, not {self.pick!r}")


def to_uint8(img: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """img [N, C, H, W] float in [-1, 1] -> uint8 [N, H, W, 3] (NVlabs' conversion; grey to RGB)."""
    x = (img.float() * 127.5 + 128).clamp_(0, 255).permute(0, 2, 3, 1)  # [N, H, W, C]
    if x.shape[-1] == 1:
        x = x.expand(-1, -1, -1, 3)
    if out is None:
        return x.to(torch.uint8)
    out.copy_(x)  # float -> uint8 truncates like .to(torch.uint8)
    return out


@torch.no_grad()
def reference_images(
    G: torch.nn.Module, ws: torch.Tensor, *, noise_mode: str = "const"
) -> torch.Tensor:
    """The published path: ws [N, num_ws, w_dim] -> float32 images [N, C, H, W], fp32, eager."""
    return G.synthesis(ws, noise_mode=noise_mode, force_fp32=True)


def probe_ws(
    G: torch.nn.Module, n: int, *, device: torch.device, seed: int = PROBE_SEED
) -> torch.Tensor:
    """ws [n, num_ws, w_dim] of n seeded z through G's mapping (untruncated: the hard case)."""
    z = torch.from_numpy(np.random.RandomState(seed).randn(n, G.z_dim).astype(np.float32))
    c = torch.zeros(n, G.c_dim)
    with torch.no_grad():
        return G.mapping(z.to(device), c.to(device)).float()


# ----------------------------------------------------------------------------- the plan


class UnsupportedModel(Exception):
    """The plan does not cover this generator (e.g. a resnet synthesis): use the reference."""


@dataclass
class _ConvPlan:
    """One modulated conv layer with every w-independent part precomputed."""

    name: str  # e.g. "b64.conv0", for descriptions
    kind: str  # one of picker.KINDS
    resolution: int  # output side in pixels
    w_index: int  # which of the num_ws w's drives it
    affine_t: torch.Tensor  # [w_dim, C_in] affine weight with its gain, transposed
    affine_b: torch.Tensor  # [1, C_in] affine bias with its gain
    weight: torch.Tensor  # [C_out, C_in, k, k] float32
    weight_sq: (
        torch.Tensor | None
    )  # [C_out, C_in] sum over k of weight² (demodulation); None: no demod
    shared: torch.Tensor  # the scaled form's weight ([C_out(·4), C_in, k, k]), ·shared_gain,
    #                       in the compute dtype and layout (phases for a subpixel layer)
    shared_gain: float  # keeps the shared conv's sums near 1 (fp16 range); undone by demod
    noise: torch.Tensor | None  # [1, 1, R, R] noise·strength·gain in the compute dtype
    bias: torch.Tensor  # [C_out] bias·gain in the compute dtype
    slope: float  # leaky ReLU slope (1.0: linear)
    gain: float  # activation gain, folded into the demodulation coefficients
    clamp: float | None  # clamp after the activation
    up: int
    padding: int
    resample_filter: torch.Tensor | None
    phases: torch.Tensor | None = None  # [C_out*4, C_in, 3, 3] up-conv as 4 sub-pixel kernels
    shared_phases: torch.Tensor | None = None  # the scaled form's phases (as `shared`)
    impl: LayerImpl = LayerImpl()  # how it runs (the picker's choice)


@dataclass
class _BlockPlan:
    resolution: int
    const: torch.Tensor | None  # [1, C, 4, 4] in the compute dtype (first block)
    convs: list[_ConvPlan]
    torgb: _ConvPlan
    resample_filter: torch.Tensor  # image upsampling filter
    first: bool
    img_fir: str = "cuda"  # the image upsampling's FIR: "cuda" (fused where built) or "ref"


@dataclass
class SynthesisPlan:
    """G.synthesis unrolled into flat per-layer tensors for one batch size, dtype and layout."""

    blocks: list[_BlockPlan]
    batch: int
    dtype: torch.dtype
    memory_format: torch.memory_format
    num_ws: int
    w_dim: int
    resolution: int
    img_channels: int
    _repeated_bias: dict[tuple[int, int], torch.Tensor] = field(default_factory=dict)

    @classmethod
    @torch.no_grad()
    def build(
        cls,
        G: torch.nn.Module,
        *,
        batch: int,
        dtype: torch.dtype = torch.float32,
        channels_last: bool = False,
        noise_mode: str = "const",
        subpixel: bool = False,
    ) -> SynthesisPlan:
        """Precompute the plan of G (on G's device); UnsupportedModel if its layout is not covered.

        Every layer starts in today's form (grouped conv, PyTorch epilogue); use() changes it.
        """
        syn = G.synthesis
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        blocks: list[_BlockPlan] = []
        w_idx = 0
        for res in syn.block_resolutions:
            block = getattr(syn, f"b{res}")
            if block.architecture != "skip":
                raise UnsupportedModel(
                    f"synthesis architecture {block.architecture!r} "
                    f"(the plan covers 'skip', the published generator's)"
                )
            first = block.in_channels == 0
            names = ["conv1"] if first else ["conv0", "conv1"]
            convs = [
                _conv_plan(
                    getattr(block, name),
                    w_idx + i,
                    name=f"b{res}.{name}",
                    resolution=res,
                    dtype=dtype,
                    memory_format=memory_format,
                    noise_mode=noise_mode,
                    subpixel=subpixel,
                )
                for i, name in enumerate(names)
            ]
            torgb = _torgb_plan(
                block.torgb,
                w_idx + block.num_conv,
                name=f"b{res}.torgb",
                resolution=res,
                dtype=dtype,
                memory_format=memory_format,
            )
            const = None
            if first:
                const = block.const.detach().to(dtype).unsqueeze(0)  # [1, C, 4, 4]
            blocks.append(
                _BlockPlan(
                    resolution=res,
                    const=const,
                    convs=convs,
                    torgb=torgb,
                    resample_filter=block.resample_filter.detach().float(),
                    first=first,
                )
            )
            w_idx += block.num_conv
        return cls(
            blocks=blocks,
            batch=batch,
            dtype=dtype,
            memory_format=memory_format,
            num_ws=syn.num_ws,
            w_dim=syn.w_dim,
            resolution=syn.img_resolution,
            img_channels=syn.img_channels,
        )

    # --- layer forms ----------------------------------------------------------------------

    def layers(self) -> list[_ConvPlan]:
        """Every modulated layer, in order (convs and toRGBs)."""
        return [conv for block in self.blocks for conv in (*block.convs, block.torgb)]

    def shape_key(self, conv: _ConvPlan) -> ShapeKey:
        """What `conv`'s speed depends on (the picker's and the cache's key)."""
        c_out, c_in = conv.weight.shape[:2]
        return ShapeKey(
            kind=conv.kind,
            resolution=conv.resolution,
            c_in=int(c_in),
            c_out=int(c_out),
            up=conv.up,
            batch=self.batch,
            dtype=DTYPE_NAMES[self.dtype],
            memory_format="nhwc" if self.memory_format == torch.channels_last else "nchw",
        )

    def image_key(self, block: _BlockPlan) -> ShapeKey:
        """The shape key of a block's image upsampling (to its resolution, in float32)."""
        c = self.img_channels
        return ShapeKey("imgup", block.resolution, c, c, 2, self.batch, "fp32", "nchw")

    def use(self, choices: Mapping[ShapeKey, LayerImpl]) -> None:
        """Run each layer as `choices` says for its shape (today's form where it says nothing)."""
        for conv in self.layers():
            conv.impl = choices.get(self.shape_key(conv), LayerImpl())
            if _fir_or_subpixel(conv, conv.impl) != "subpixel":
                # 4x a weight's size, twice: kept only where the layer runs them.
                conv.phases = conv.shared_phases = None
        for block in self.blocks:
            block.img_fir = choices.get(self.image_key(block), LayerImpl()).fir

    def shape_keys(self) -> set[ShapeKey]:
        """Every distinct shape of the plan: its layers' and its image upsamplings'."""
        keys = {self.shape_key(conv) for conv in self.layers()}
        return keys | {self.image_key(block) for block in self.blocks if not block.first}

    def layer_runs(self, *, seed: int = 0) -> dict[ShapeKey, MakeRun]:
        """For each distinct shape, impl -> a call running its first layer on random input."""
        runs: dict[ShapeKey, MakeRun] = {}
        for block in self.blocks:
            for conv in (*block.convs, block.torgb):
                key = self.shape_key(conv)
                if key not in runs:
                    runs[key] = self._layer_run(conv, seed=seed)
            if not block.first and self.image_key(block) not in runs:
                runs[self.image_key(block)] = self._image_run(block, seed=seed)
        return runs

    def _layer_run(self, conv: _ConvPlan, *, seed: int) -> MakeRun:
        device = conv.weight.device
        generator = torch.Generator(device=device).manual_seed(seed)
        side = conv.resolution // conv.up
        x = torch.randn(
            self.batch, conv.weight.shape[1], side, side, generator=generator, device=device
        )  # [B, C_in, R/up, R/up]
        x = x.to(self.dtype).contiguous(memory_format=self.memory_format)
        w = torch.randn(self.batch, self.w_dim, generator=generator, device=device)  # [B, w_dim]

        def make_run(impl: LayerImpl) -> Callable[[], torch.Tensor]:
            return lambda: self._modulated(x, w, conv, impl=impl)

        return make_run

    def _image_run(self, block: _BlockPlan, *, seed: int) -> MakeRun:
        device = block.resample_filter.device
        generator = torch.Generator(device=device).manual_seed(seed)
        side = block.resolution // 2
        img = torch.randn(
            self.batch, self.img_channels, side, side, generator=generator, device=device
        )  # [B, C, R/2, R/2] float32

        def make_run(impl: LayerImpl) -> Callable[[], torch.Tensor]:
            return lambda: upfirdn2d.upsample2d(img, block.resample_filter, impl=impl.fir)

        return make_run

    def summary(self) -> str:
        """How many layers run in each form, e.g. "conv grouped:3 scaled:6; epilogue torch:9"."""
        layers = self.layers()
        parts = [
            _counts("conv", (c.impl.conv for c in layers)),
            _counts("epilogue", (c.impl.epilogue for c in layers)),
        ]
        ups = [_fir_or_subpixel(c, c.impl) for c in layers if c.kind == "up"]
        if ups:
            parts.append(_counts("fir", ups))
        images = [block.img_fir for block in self.blocks if not block.first]
        if images:
            parts.append(_counts("image fir", images))
        return "; ".join(parts)

    def describe(self) -> list[dict[str, str]]:
        """Per layer: its name, shape key and form, in words (for bench and profile reports)."""
        rows = []
        for block in self.blocks:
            for conv in (*block.convs, block.torgb):
                form = conv.impl.text(fir=conv.kind == "up")
                rows.append({"name": conv.name, "shape": self.shape_key(conv).text(), "form": form})
            if not block.first:  # the image is upsampled after toRGB, then the two are added
                key = self.image_key(block)
                form = f"{block.img_fir} fir"
                rows.append(
                    {"name": f"b{block.resolution}.image", "shape": key.text(), "form": form}
                )
        return rows

    # --- per frame ------------------------------------------------------------------------

    def forward(self, ws: torch.Tensor) -> torch.Tensor:
        """ws [batch, num_ws, w_dim] float32 -> img [batch, C, H, W] float32 (as G.synthesis)."""
        n = ws.shape[0]
        x = img = None
        for block in self.blocks:
            if block.first:
                x = block.const.expand(n, -1, -1, -1).contiguous(memory_format=self.memory_format)
            for conv in block.convs:
                x = self._modulated(x, ws[:, conv.w_index], conv)
            y = self._modulated(x, ws[:, block.torgb.w_index], block.torgb).float()
            if img is None:
                img = y.contiguous()
            else:
                img = upfirdn2d.upsample2d(img, block.resample_filter, impl=block.img_fir)
                img = img.add_(y)
        return img

    def _modulated(
        self, x: torch.Tensor, w: torch.Tensor, conv: _ConvPlan, *, impl: LayerImpl | None = None
    ) -> torch.Tensor:
        """x [N, C_in, r, r], w [N, w_dim] -> [N, C_out, R, R] in the plan's dtype and layout."""
        impl = impl or conv.impl
        styles = torch.addmm(conv.affine_b, w, conv.affine_t)  # [N, C_in]
        if impl.conv == "scaled":
            y = self._scaled_conv(x, styles, conv, fir=_fir_or_subpixel(conv, impl))
            scale = _dcoefs(styles, conv, gain=conv.gain / conv.shared_gain)
            return self._epilogue(y, conv, impl, scale=scale, bias=conv.bias)
        # A plain conv takes the bias itself: one pass less for the PyTorch epilogue.
        bias_in_conv = impl.epilogue == "torch" and conv.up == 1
        y = self._grouped_conv(x, styles, conv, fir=_fir_or_subpixel(conv, impl), bias=bias_in_conv)
        return self._epilogue(y, conv, impl, scale=None, bias=None if bias_in_conv else conv.bias)

    def _grouped_conv(
        self, x: torch.Tensor, styles: torch.Tensor, conv: _ConvPlan, *, fir: str, bias: bool
    ) -> torch.Tensor:
        """Styles and demodulation folded into per-sample weights; the batch is one grouped conv."""
        n = x.shape[0]
        c_out, c_in, kh, kw = conv.weight.shape
        scale = styles.reshape(n, 1, c_in, 1, 1)
        dcoefs = _dcoefs(styles, conv, gain=conv.gain)  # [N, C_out] or None
        x = x.reshape(1, n * c_in, *x.shape[2:])
        if _subpixel(conv, fir):
            # Modulation scales whole (out, in) kernels, so it commutes with the FIR filter.
            weight = conv.phases.reshape(1, c_out, 4, c_in, 3, 3) * scale.unsqueeze(2)
            if dcoefs is not None:
                weight = weight * dcoefs.reshape(n, c_out, 1, 1, 1, 1)
            weight = weight.reshape(n * c_out * 4, c_in, 3, 3).to(self.dtype)
            x = F.conv2d(x, weight, padding=1, groups=n)  # [1, N*C_out*4, H, W]
            return F.pixel_shuffle(x.reshape(n, c_out * 4, *x.shape[2:]), 2)  # [N, C_out, 2H, 2W]
        weight = conv.weight * scale  # [N, C_out, C_in, k, k]
        if dcoefs is not None:
            weight = weight * dcoefs.reshape(n, c_out, 1, 1, 1)
        weight = weight.reshape(n * c_out, c_in, kh, kw).to(self.dtype)
        if conv.up == 1:
            b = self._bias(conv, n) if bias else None
            x = F.conv2d(x, weight, bias=b, padding=conv.padding, groups=n)
        else:
            x = conv2d_resample(
                x,
                weight,
                f=conv.resample_filter,
                up=conv.up,
                padding=conv.padding,
                groups=n,
                flip_weight=False,
                impl=fir,
            )
        return x.reshape(n, c_out, *x.shape[2:])

    def _scaled_conv(
        self, x: torch.Tensor, styles: torch.Tensor, conv: _ConvPlan, *, fir: str
    ) -> torch.Tensor:
        """x·styles, then one conv with the shared weight over the whole batch (cuDNN's best case).

        The demodulation is left to the epilogue: it scales whole output channels.
        """
        n, c_in = styles.shape
        x = x * styles.to(self.dtype).reshape(n, c_in, 1, 1)  # a new tensor: x also feeds toRGB
        if _subpixel(conv, fir):
            x = F.conv2d(x, conv.shared_phases, padding=1)  # [N, C_out*4, H, W]
            return F.pixel_shuffle(x, 2)  # [N, C_out, 2H, 2W]
        if conv.up == 1:
            return F.conv2d(x, conv.shared, padding=conv.padding)
        return conv2d_resample(
            x,
            conv.shared,
            f=conv.resample_filter,
            up=conv.up,
            padding=conv.padding,
            flip_weight=False,
            impl=fir,
        )

    def _epilogue(
        self,
        x: torch.Tensor,
        conv: _ConvPlan,
        impl: LayerImpl,
        *,
        scale: torch.Tensor | None,
        bias: torch.Tensor | None,
    ) -> torch.Tensor:
        """Demodulation, bias, noise, activation and clamp, in place, on x [N, C_out, R, R]."""
        options = dict(scale=scale, bias=bias, noise=conv.noise, slope=conv.slope, clamp=conv.clamp)
        if impl.epilogue == "triton":
            from lyriscope.engine.synth import triton_epilogue  # triton may be missing: lazily

            x = x.contiguous(memory_format=self.memory_format)
            return triton_epilogue.epilogue(x, **options)
        return torch_epilogue(x, **options).contiguous(memory_format=self.memory_format)

    def _bias(self, conv: _ConvPlan, n: int) -> torch.Tensor:
        if n == 1:
            return conv.bias
        key = (id(conv), n)
        if key not in self._repeated_bias:
            self._repeated_bias[key] = conv.bias.repeat(n)  # [N * C_out]
        return self._repeated_bias[key]


def torch_epilogue(
    x: torch.Tensor,
    *,
    scale: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    noise: torch.Tensor | None = None,
    slope: float = 1.0,
    clamp: float | None = None,
) -> torch.Tensor:
    """The epilogue in PyTorch ops, in place: the reference of the Triton kernel, the CPU path.

    x [N, C, H, W]; scale [N, C] float32; bias [C]; noise [1, 1, H, W]; slope 1.0: linear.
    """
    if scale is not None:
        x = x.mul_(scale.reshape(*scale.shape, 1, 1))
    if bias is not None:
        x = x.add_(bias.reshape(1, -1, 1, 1))
    if noise is not None:
        x = x.add_(noise)
    if slope == 0.0:
        x = F.relu_(x)
    elif slope != 1.0:
        x = F.leaky_relu_(x, slope)
    if clamp is not None:
        x = x.clamp_(-clamp, clamp)
    return x


def _fir_or_subpixel(conv: _ConvPlan, impl: LayerImpl) -> str:
    """The up-conv's FIR impl, or "subpixel" where the layer runs as one conv + pixel shuffle."""
    forced = conv.kind == "subpixel"  # FastOptions.subpixel: every up-conv that allows it
    if conv.phases is not None and (forced or impl.up == "subpixel"):
        return "subpixel"
    return impl.fir


def _subpixel(conv: _ConvPlan, fir: str) -> bool:
    if fir == "subpixel" and conv.phases is None:  # a choice the layer's geometry forbids
        raise ValueError(f"{conv.name} has no subpixel form")
    return fir == "subpixel"


def _dcoefs(styles: torch.Tensor, conv: _ConvPlan, *, gain: float) -> torch.Tensor | None:
    """Demodulation coefficients [N, C_out] times `gain`; None for a layer without demodulation."""
    if conv.weight_sq is None:
        return None
    # Σ_ik (W·s)² = Σ_i s_i² Σ_k W², so demodulation needs no [N, C_out, C_in, k, k] pass.
    return (styles.square() @ conv.weight_sq.t() + 1e-8).rsqrt() * gain


def _counts(what: str, values: Any) -> str:
    counts = Counter(values)
    return f"{what} " + " ".join(f"{name}:{counts[name]}" for name in sorted(counts))


def _conv_plan(
    layer: torch.nn.Module,
    w_index: int,
    *,
    name: str,
    resolution: int,
    dtype: torch.dtype,
    memory_format: torch.memory_format,
    noise_mode: str,
    subpixel: bool = False,
) -> _ConvPlan:
    if layer.activation not in HOMOGENEOUS:
        raise UnsupportedModel(
            f"activation {layer.activation!r} (the plan folds gains through "
            f"linear, relu and lrelu only)"
        )
    gain = float(layer.act_gain)
    affine = layer.affine
    weight = layer.weight.detach().float().contiguous()  # [C_out, C_in, k, k]
    noise = None
    if layer.use_noise and noise_mode == "const":
        noise = (layer.noise_const.detach() * layer.noise_strength.detach() * gain).to(dtype)
        noise = noise.reshape(1, 1, *noise.shape)  # [1, 1, R, R]
    clamp = layer.conv_clamp  # the layer's gain argument is 1 in a skip synthesis
    f = layer.resample_filter.detach().float()
    phases = None
    if layer.up == 2 and weight.shape[-2:] == (3, 3) and layer.padding == 1 and f.shape == (4, 4):
        phases = _subpixel_kernels(weight, f * 4)  # gain up² as upfirdn2d applies it
    # Phases are built wherever the geometry allows, so the picker can time them; kind
    # "subpixel" forces them (FastOptions.subpixel), kind "up" leaves the form to impl.up.
    kind = "subpixel" if subpixel and phases is not None else ("up" if layer.up > 1 else "conv")
    # Unit-variance weights sum C_in·k² terms: 1/sqrt(fan-in) keeps fp16 sums in range.
    shared_gain = 1 / math.sqrt(weight[0].numel())
    shared = weight * shared_gain
    shared_phases = None
    if phases is not None:
        shared_phases = (phases * shared_gain).to(dtype).contiguous(memory_format=memory_format)
    return _ConvPlan(
        name=name, kind=kind, resolution=resolution, w_index=w_index,
        affine_t=(affine.weight.detach().float() * affine.weight_gain).t().contiguous(),
        affine_b=(affine.bias.detach().float() * affine.bias_gain).reshape(1, -1),
        weight=weight, weight_sq=weight.square().sum(dim=[2, 3]),
        shared=shared.to(dtype).contiguous(memory_format=memory_format), shared_gain=shared_gain,
        noise=noise, bias=(layer.bias.detach().float() * gain).to(dtype),
        slope=HOMOGENEOUS[layer.activation], gain=gain, clamp=clamp, up=layer.up,
        padding=layer.padding, resample_filter=f, phases=phases, shared_phases=shared_phases,
    )  # fmt: skip


def _subpixel_kernels(weight: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """The 2x up-conv (zero insertion, FIR f [4, 4], 3x3 conv, padding 1) as 4 phase kernels.

    K = weight ⊛ f is 6x6 on the upsampled grid; output pixel (2i+py, 2j+px) reads input
    pixels i-1..i+1 through taps K[py+4-2s, px+4-2t], so one 3x3 conv with 4·C_out outputs
    and a pixel shuffle replace the transposed conv and the filter pass.
    weight [C_out, C_in, 3, 3] -> [C_out*4, C_in, 3, 3] (channel o*4 + py*2 + px).
    """
    c_out, c_in = weight.shape[:2]
    K = weight.new_zeros(c_out, c_in, 6, 6)
    for by in range(4):
        for bx in range(4):
            K[:, :, by : by + 3, bx : bx + 3] += weight * f[by, bx]  # full true convolution
    taps = torch.tensor([4, 2, 0])  # s = 0, 1, 2 -> K index 4 - 2s (+ phase)
    phases = torch.stack(
        [K[:, :, py + taps][:, :, :, px + taps] for py in range(2) for px in range(2)], dim=2
    )  # [C_out, C_in, 4, 3, 3]
    return phases.permute(0, 2, 1, 3, 4).reshape(c_out * 4, c_in, 3, 3).contiguous()


def _torgb_plan(
    layer: torch.nn.Module,
    w_index: int,
    *,
    name: str,
    resolution: int,
    dtype: torch.dtype,
    memory_format: torch.memory_format,
) -> _ConvPlan:
    affine = layer.affine
    gain = affine.weight_gain * layer.weight_gain  # ToRGB scales its styles, not its weight
    weight = layer.weight.detach().float().contiguous()  # [C_img, C_in, 1, 1]
    return _ConvPlan(
        name=name, kind="torgb", resolution=resolution, w_index=w_index,
        affine_t=(affine.weight.detach().float() * gain).t().contiguous(),
        affine_b=(affine.bias.detach().float() * affine.bias_gain * layer.weight_gain).reshape(1, -1),
        weight=weight, weight_sq=None,
        shared=weight.to(dtype).contiguous(memory_format=memory_format), shared_gain=1.0,
        noise=None, bias=layer.bias.detach().float().to(dtype), slope=1.0, gain=1.0,
        clamp=layer.conv_clamp, up=1, padding=layer.weight.shape[-1] // 2, resample_filter=None,
    )  # fmt: skip


# ----------------------------------------------------------------------------- the runner


class FastSynthesis:
    """ws -> uint8 frames on the device by the fastest path that runs here and equals the reference.

    Calls with `batch` ws (the batch it was built for) take the captured path; other batch
    sizes run the plan eagerly. The uint8 result of a graph replay is a static buffer,
    overwritten by the next call: copy it (HostFrames) before calling again.
    """

    def __init__(
        self,
        G: torch.nn.Module,
        *,
        batch: int = 1,
        options: FastOptions = FastOptions(),
        graph_pool: Any = None,
        picker: LayerPicker | None = None,
    ) -> None:
        """graph_pool: torch.cuda.graph_pool_handle() shared by models replayed on one stream;
        picker: times the layer forms when options.pick asks for it (None: LayerPicker's
        defaults: CUDA-event timer, the user's cache file)."""
        if batch < 1:
            raise ValueError(f"batch must be at least 1, got {batch}")
        self.G = G
        self.options = options
        self.batch = batch
        self.device = next(G.parameters()).device
        self.resolution: int = G.img_resolution
        cuda = self.device.type == "cuda"
        self.notes: list[str] = []  # the fallbacks taken, for the report
        self.stream = torch.cuda.Stream(self.device) if cuda else None
        self.plan: SynthesisPlan | None = None
        self._graph: Any = None
        self._compiled: Any = None
        self._static_ws: torch.Tensor | None = None
        self._static_out: torch.Tensor | None = None
        self._graph_pool = graph_pool
        self._picker = picker

        dtype = (
            DTYPES[options.dtype]
            if options.dtype != "auto"
            else (torch.float16 if cuda else torch.float32)
        )
        if dtype != torch.float32 and not cuda:
            self._fallback(f"{options.dtype} needs CUDA here; using float32")
            dtype = torch.float32
        channels_last = cuda if options.channels_last is None else options.channels_last
        try:
            self.plan = self._checked_plan(dtype, channels_last)
        except UnsupportedModel as exc:
            self._fallback(f"the fast plan does not cover this model ({exc}); using the reference")
            return
        if cuda and options.compile:
            self._compile()
        elif cuda and options.cuda_graph:
            self._capture()

    # --- per frame ------------------------------------------------------------------------

    @torch.no_grad()
    def __call__(self, ws: torch.Tensor) -> torch.Tensor:
        """ws [N, num_ws, w_dim] -> uint8 [N, H, W, 3] on the device."""
        if self._graph is not None and ws.shape[0] == self.batch:
            stream = self.stream
            stream.wait_stream(torch.cuda.current_stream(self.device))  # ws may come from there
            with torch.cuda.stream(stream):
                self._static_ws.copy_(ws, non_blocking=True)
                self._graph.replay()
            torch.cuda.current_stream(self.device).wait_stream(stream)
            return self._static_out
        return to_uint8(self.float_images(ws))

    @torch.no_grad()
    def float_images(self, ws: torch.Tensor) -> torch.Tensor:
        """ws [N, num_ws, w_dim] -> float32 images [N, C, H, W] by this path, without the graph."""
        ws = ws.to(self.device, torch.float32)
        if self.plan is None:
            return reference_images(self.G, ws, noise_mode=self.options.noise_mode)
        if self._compiled is not None and ws.shape[0] == self.batch:
            return self._compiled(ws)
        return self.plan.forward(ws)

    @property
    def mode(self) -> str:
        """What runs, in words, with how many layers run in each form, e.g.
        "plan fp16 channels-last cuda-graph (conv grouped:3 scaled:24; epilogue triton:27;
        fir ref:8; image fir cuda:8)"."""
        if self.plan is None:
            return "reference fp32"
        parts = [
            "plan",
            {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}[self.plan.dtype],
        ]
        if self.plan.memory_format == torch.channels_last:
            parts.append("channels-last")
        if any(
            _fir_or_subpixel(c, c.impl) == "subpixel" for b in self.plan.blocks for c in b.convs
        ):
            parts.append("subpixel")
        if self._graph is not None:
            parts.append("cuda-graph")
        if self._compiled is not None:
            parts.append("compiled")
        return f"{' '.join(parts)} ({self.plan.summary()})"

    @property
    def layers(self) -> list[dict[str, str]]:
        """Per layer: name, shape and the form it runs in (empty on the reference path)."""
        return [] if self.plan is None else self.plan.describe()

    # --- building -------------------------------------------------------------------------

    def _fallback(self, message: str) -> None:
        self.notes.append(message)
        warnings.warn(f"fast synthesis: {message}", FastPathWarning, stacklevel=3)

    def _checked_plan(self, dtype: torch.dtype, channels_last: bool) -> SynthesisPlan:
        """The plan in `dtype` if its images stay within tolerance of the reference, else float32."""
        plan = self._picked_plan(dtype, channels_last)
        if dtype == torch.float32:
            return plan
        problem = self._tolerance_problem(plan)
        if problem is None:
            return plan
        self._fallback(f"{dtype} {problem}; using float32")
        return self._picked_plan(torch.float32, channels_last)

    def _picked_plan(self, dtype: torch.dtype, channels_last: bool) -> SynthesisPlan:
        """The plan with each layer in its chosen form, or today's forms if those are off."""
        plan = SynthesisPlan.build(
            self.G,
            batch=self.batch,
            dtype=dtype,
            channels_last=channels_last,
            noise_mode=self.options.noise_mode,
            subpixel=self.options.subpixel,
        )
        choices = self._layer_choices(plan)
        plan.use(choices)
        if all(impl == LayerImpl() for impl in choices.values()):
            return plan
        problem = self._tolerance_problem(plan)
        if problem is None:
            return plan
        self._fallback(
            f"the chosen layer forms in {dtype} {problem}; using grouped convs and PyTorch "
            f"epilogues"
        )
        plan.use({})
        return plan

    def _layer_choices(self, plan: SynthesisPlan) -> dict[ShapeKey, LayerImpl]:
        """Each shape's form: forced by options.layer, picked (timed or cached), or none."""
        keys = plan.shape_keys()
        forced = self.options.layer
        if forced is not None:
            if forced.epilogue == "triton" and not triton_usable(self.device):
                self._fallback(
                    "the Triton epilogue cannot run here (no triton, or no CUDA and "
                    "TRITON_INTERPRET unset); using the PyTorch epilogue"
                )
                forced = replace(forced, epilogue="torch")
            return dict.fromkeys(keys, forced)
        pick = self.options.pick
        if pick == "off" or (pick == "auto" and self.device.type != "cuda"):
            return {}
        if self._picker is None:
            self._picker = LayerPicker(device=self.device)
        seen = len(self._picker.notes)
        with torch.no_grad():
            choices = self._picker.pick(plan.layer_runs())
        self.notes += self._picker.notes[seen:]  # the picker warned already
        return choices

    def _tolerance_problem(self, plan: SynthesisPlan) -> str | None:
        """None if the plan's probe images are within tolerance of the reference, else why not."""
        ws = probe_ws(self.G, self.batch, device=self.device)
        with torch.no_grad():
            # Compared as shown: pixels beyond [-1, 1] saturate either way.
            error = (
                plan.forward(ws).clamp(-1, 1) - reference_images(self.G, ws).clamp(-1, 1)
            ).abs()
        worst, mean = float(error.max()), float(error.mean())  # a sync, once, at build time
        if (
            math.isfinite(worst)
            and worst <= self.options.max_abs_error
            and mean <= self.options.mean_abs_error
        ):
            return None
        return (
            f"differs from the reference by up to {worst:.3g} (mean {mean:.3g}), more than "
            f"{self.options.max_abs_error} ({self.options.mean_abs_error})"
        )

    def _capture(self) -> None:
        """Capture plan + uint8 conversion for `batch` as one CUDA graph on the dedicated stream."""
        device, stream = self.device, self.stream
        try:
            self._static_ws = probe_ws(self.G, self.batch, device=device)  # [B, num_ws, w_dim]
            res = self.resolution
            self._static_out = torch.empty(
                self.batch, res, res, 3, dtype=torch.uint8, device=device
            )  # [B, H, W, 3]
            stream.wait_stream(torch.cuda.current_stream(device))
            with torch.no_grad(), torch.cuda.stream(stream):
                for _ in range(3):  # warm up: cuDNN picks its algorithms outside the capture
                    to_uint8(self.plan.forward(self._static_ws), out=self._static_out)
            stream.synchronize()
            graph = torch.cuda.CUDAGraph()
            with torch.no_grad(), torch.cuda.graph(graph, pool=self._graph_pool, stream=stream):
                to_uint8(self.plan.forward(self._static_ws), out=self._static_out)
            self._graph = graph
        except Exception as exc:  # a capture failure must leave a working (eager) path
            self._graph = None
            self._fallback(
                f"CUDA graph capture failed ({type(exc).__name__}: {exc}); running the plan eagerly"
            )

    def _compile(self) -> None:
        try:
            # Default mode: inductor fuses the elementwise tails; autotuning would take minutes.
            compiled = torch.compile(self.plan.forward, dynamic=False)
            with torch.no_grad():
                compiled(probe_ws(self.G, self.batch, device=self.device))  # compile now, not live
            self._compiled = compiled
        except Exception as exc:
            self._compiled = None
            self._fallback(
                f"torch.compile failed ({type(exc).__name__}: {exc}); running the plan eagerly"
            )


# ----------------------------------------------------------------------------- host upload


class HostFrames:
    """Double-buffered copies of device frames into (pinned) host memory for the GL upload.

    `push(frames)` starts the copy of this frame and returns the host array of the frame
    pushed `depth` calls before (None until there is one): on CUDA the copy runs
    asynchronously on `stream`, with one event per buffer, so the host only waits for the
    older copy; depth is 1 there. On the CPU the copy is immediate and depth 0.
    """

    def __init__(
        self, shape: tuple[int, ...], *, device: torch.device, stream: Any = None, buffers: int = 2
    ) -> None:
        self.device = device
        self.cuda = device.type == "cuda"
        self.depth = 1 if self.cuda else 0
        self.stream = stream
        count = buffers if self.cuda else 1
        self._host = [
            torch.empty(shape, dtype=torch.uint8, pin_memory=self.cuda) for _ in range(count)
        ]
        self._events = [torch.cuda.Event() if self.cuda else None for _ in range(count)]
        self._next = 0
        self._pending: list[int] = []  # buffers copied into, oldest first

    def push(self, frames: torch.Tensor) -> np.ndarray | None:
        """Copy uint8 frames [..] in; the host array of the frame from `depth` pushes ago."""
        i = self._next
        self._next = (i + 1) % len(self._host)
        if not self.cuda:
            self._host[i].copy_(frames)
            return self._host[i].numpy()
        stream = self.stream or torch.cuda.current_stream(self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(stream):
            self._host[i].copy_(frames, non_blocking=True)
            self._events[i].record(stream)
        self._pending.append(i)
        if len(self._pending) <= self.depth:
            return None
        return self._ready(self._pending.pop(0))

    def flush(self) -> list[np.ndarray]:
        """The frames still in flight, oldest first (the end of a run)."""
        done = [self._ready(i) for i in self._pending]
        self._pending.clear()
        return done

    def _ready(self, i: int) -> np.ndarray:
        self._events[i].synchronize()  # waits for this buffer's copy only
        return self._host[i].numpy()
