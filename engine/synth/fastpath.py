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
- optionally (FastOptions.subpixel) each 2x up-conv as one 3x3 conv with 4x the outputs and
  a pixel shuffle instead of a transposed conv plus a FIR pass;
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
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from lyriscope.trainers.ops import upfirdn2d
from lyriscope.trainers.ops.conv2d_resample import conv2d_resample

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
HOMOGENEOUS = {"linear": 1.0, "relu": 0.0, "lrelu": 0.2}  # act(g*x) = g*act(x) for g > 0: slope < 0
PROBE_SEED = 1234  # z of the tolerance probe


class FastPathWarning(RuntimeWarning):
    """A speed-up could not run; a slower path that gives the same images is used instead."""


@dataclass(frozen=True)
class FastOptions:
    """How the fast path may speed synthesis up; every speed-up falls back when it cannot run."""

    dtype: str = "auto"  # "auto": fp16 on CUDA, fp32 on CPU; or "fp32", "fp16", "bf16"
    channels_last: bool | None = None  # NHWC activations; None: on CUDA only
    cuda_graph: bool = True  # capture the frame as one CUDA graph (CUDA only)
    compile: bool = False  # torch.compile the plan instead of a graph capture
    subpixel: bool = False  # up-convs as one 3x3 conv + pixel shuffle (4x the MACs, no FIR
    #                         pass; slower on CPU, to be measured on GPUs)
    noise_mode: str = "const"  # "const" (the reference's deterministic noise) or "none"
    max_abs_error: float = 0.1  # reduced precision may differ at most this on [-1, 1] pixels
    mean_abs_error: float = 0.005  # ... and on average at most this (≈ 0.3 uint8 levels)

    def __post_init__(self) -> None:
        if self.dtype != "auto" and self.dtype not in DTYPES:
            raise ValueError(f"dtype must be 'auto' or one of {sorted(DTYPES)}, not {self.dtype!r}")
        if self.noise_mode not in ("const", "none"):
            raise ValueError(
                f"the fast path keeps frames deterministic: noise_mode 'const' or "
                f"'none', not {self.noise_mode!r}"
            )


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

    w_index: int  # which of the num_ws w's drives it
    affine_t: torch.Tensor  # [w_dim, C_in] affine weight with its gain, transposed
    affine_b: torch.Tensor  # [1, C_in] affine bias with its gain
    weight: torch.Tensor  # [C_out, C_in, k, k] float32
    weight_sq: (
        torch.Tensor | None
    )  # [C_out, C_in] sum over k of weight² (demodulation); None: no demod
    noise: torch.Tensor | None  # [1, 1, R, R] noise·strength·gain in the compute dtype
    bias: torch.Tensor  # [C_out] bias·gain in the compute dtype
    slope: float  # leaky ReLU slope (1.0: linear)
    gain: float  # activation gain, folded into the demodulation coefficients
    clamp: float | None  # clamp after the activation
    up: int
    padding: int
    resample_filter: torch.Tensor | None
    phases: torch.Tensor | None = None  # [C_out*4, C_in, 3, 3] up-conv as 4 sub-pixel kernels


@dataclass
class _BlockPlan:
    resolution: int
    const: torch.Tensor | None  # [1, C, 4, 4] in the compute dtype (first block)
    convs: list[_ConvPlan]
    torgb: _ConvPlan
    resample_filter: torch.Tensor  # image upsampling filter
    first: bool


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
        """Precompute the plan of G (on G's device); UnsupportedModel if its layout is not covered."""
        syn = G.synthesis
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
            layers = [block.conv1] if first else [block.conv0, block.conv1]
            convs = [
                _conv_plan(layer, w_idx + i, dtype=dtype, noise_mode=noise_mode, subpixel=subpixel)
                for i, layer in enumerate(layers)
            ]
            torgb = _torgb_plan(block.torgb, w_idx + block.num_conv, dtype=dtype)
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
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
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
                img = upfirdn2d.upsample2d(img, block.resample_filter).add_(y)
        return img

    def _modulated(self, x: torch.Tensor, w: torch.Tensor, conv: _ConvPlan) -> torch.Tensor:
        n = x.shape[0]
        c_out, c_in, kh, kw = conv.weight.shape
        styles = torch.addmm(conv.affine_b, w, conv.affine_t)  # [N, C_in]
        scale = styles.reshape(n, 1, c_in, 1, 1)
        dcoefs = None
        if conv.weight_sq is not None:
            # Σ_ik (W·s)² = Σ_i s_i² Σ_k W², so demodulation needs no [N, C_out, C_in, k, k] pass.
            dcoefs = (styles.square() @ conv.weight_sq.t() + 1e-8).rsqrt() * conv.gain  # [N, C_out]
        x = x.reshape(1, n * c_in, *x.shape[2:])  # a batch is one grouped conv
        if conv.phases is not None:
            # Modulation scales whole (out, in) kernels, so it commutes with the FIR filter.
            weight = conv.phases.reshape(1, c_out, 4, c_in, 3, 3) * scale.unsqueeze(2)
            if dcoefs is not None:
                weight = weight * dcoefs.reshape(n, c_out, 1, 1, 1, 1)
            weight = weight.reshape(n * c_out * 4, c_in, 3, 3).to(self.dtype)
            x = F.conv2d(x, weight, padding=1, groups=n)  # [1, N*C_out*4, H, W]
            x = F.pixel_shuffle(x.reshape(n, c_out * 4, *x.shape[2:]), 2)  # [N, C_out, 2H, 2W]
            x = x.add_(conv.bias.reshape(1, -1, 1, 1))
            return self._tail(x, conv)
        weight = conv.weight * scale  # [N, C_out, C_in, k, k]
        if dcoefs is not None:
            weight = weight * dcoefs.reshape(n, c_out, 1, 1, 1)
        weight = weight.reshape(n * c_out, c_in, kh, kw).to(self.dtype)
        if conv.up == 1:
            # A plain conv takes the bias itself: one pass less over the activations.
            x = F.conv2d(x, weight, bias=self._bias(conv, n), padding=conv.padding, groups=n)
            x = x.reshape(n, c_out, *x.shape[2:])
        else:
            x = conv2d_resample(
                x,
                weight,
                f=conv.resample_filter,
                up=conv.up,
                padding=conv.padding,
                groups=n,
                flip_weight=False,
            )
            x = x.reshape(n, c_out, *x.shape[2:]).add_(conv.bias.reshape(1, -1, 1, 1))
        return self._tail(x, conv)

    def _tail(self, x: torch.Tensor, conv: _ConvPlan) -> torch.Tensor:
        """Noise, activation and clamp, in place, on x [N, C_out, R, R]."""
        if conv.noise is not None:
            x = x.add_(conv.noise)
        if conv.slope == 0.0:
            x = F.relu_(x)
        elif conv.slope != 1.0:
            x = F.leaky_relu_(x, conv.slope)
        if conv.clamp is not None:
            x = x.clamp_(-conv.clamp, conv.clamp)
        return x.contiguous(memory_format=self.memory_format)

    def _bias(self, conv: _ConvPlan, n: int) -> torch.Tensor:
        if n == 1:
            return conv.bias
        key = (id(conv), n)
        if key not in self._repeated_bias:
            self._repeated_bias[key] = conv.bias.repeat(n)  # [N * C_out]
        return self._repeated_bias[key]


def _conv_plan(
    layer: torch.nn.Module,
    w_index: int,
    *,
    dtype: torch.dtype,
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
    if (
        subpixel
        and layer.up == 2
        and weight.shape[-2:] == (3, 3)
        and layer.padding == 1
        and f.shape == (4, 4)
    ):
        phases = _subpixel_kernels(weight, f * 4)  # gain up² as upfirdn2d applies it
    return _ConvPlan(
        w_index=w_index,
        affine_t=(affine.weight.detach().float() * affine.weight_gain).t().contiguous(),
        affine_b=(affine.bias.detach().float() * affine.bias_gain).reshape(1, -1),
        weight=weight, weight_sq=weight.square().sum(dim=[2, 3]),
        noise=noise, bias=(layer.bias.detach().float() * gain).to(dtype),
        slope=HOMOGENEOUS[layer.activation], gain=gain, clamp=clamp, up=layer.up,
        padding=layer.padding, resample_filter=f, phases=phases,
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


def _torgb_plan(layer: torch.nn.Module, w_index: int, *, dtype: torch.dtype) -> _ConvPlan:
    affine = layer.affine
    gain = affine.weight_gain * layer.weight_gain  # ToRGB scales its styles, not its weight
    return _ConvPlan(
        w_index=w_index,
        affine_t=(affine.weight.detach().float() * gain).t().contiguous(),
        affine_b=(affine.bias.detach().float() * affine.bias_gain * layer.weight_gain).reshape(1, -1),
        weight=layer.weight.detach().float().contiguous(), weight_sq=None, noise=None,
        bias=layer.bias.detach().float().to(dtype), slope=1.0, gain=1.0,
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
    ) -> None:
        """graph_pool: torch.cuda.graph_pool_handle() shared by models replayed on one stream."""
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
        """What runs, in words (e.g. "plan fp16 channels-last cuda-graph")."""
        if self.plan is None:
            return "reference fp32"
        parts = [
            "plan",
            {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}[self.plan.dtype],
        ]
        if self.plan.memory_format == torch.channels_last:
            parts.append("channels-last")
        if any(c.phases is not None for b in self.plan.blocks for c in b.convs):
            parts.append("subpixel")
        if self._graph is not None:
            parts.append("cuda-graph")
        if self._compiled is not None:
            parts.append("compiled")
        return " ".join(parts)

    # --- building -------------------------------------------------------------------------

    def _fallback(self, message: str) -> None:
        self.notes.append(message)
        warnings.warn(f"fast synthesis: {message}", FastPathWarning, stacklevel=3)

    def _checked_plan(self, dtype: torch.dtype, channels_last: bool) -> SynthesisPlan:
        """The plan in `dtype` if its images stay within tolerance of the reference, else float32."""
        build = dict(
            batch=self.batch,
            channels_last=channels_last,
            noise_mode=self.options.noise_mode,
            subpixel=self.options.subpixel,
        )
        plan = SynthesisPlan.build(self.G, dtype=dtype, **build)
        if dtype == torch.float32:
            return plan
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
            return plan
        self._fallback(
            f"{dtype} differs from the reference by up to {worst:.3g} (mean "
            f"{mean:.3g}), more than {self.options.max_abs_error} "
            f"({self.options.mean_abs_error}); using float32"
        )
        return SynthesisPlan.build(self.G, dtype=torch.float32, **build)

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
