"""StyleGAN2 generator and discriminator, weight-compatible with NVlabs stylegan2-ada-pytorch.

Module names, parameter and buffer names, shapes and registration order equal the
published training/networks.py (config families "stylegan2", "paper*" and "auto"), so a
published state dict loads by name. Images are NCHW in [-1, 1]; z [N, z_dim],
c [N, c_dim], ws [N, num_ws, w_dim].

float16: the top `num_fp16_res` resolutions run in float16 on CUDA only; on any other
device (and with force_fp32=True) everything runs in float32, as the published code does
when not on CUDA.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from lyriscope.trainers.ops import custom_ops, upfirdn2d
from lyriscope.trainers.ops.bias_act import activation_gain, bias_act
from lyriscope.trainers.ops.conv2d_resample import conv2d_resample
from lyriscope.trainers.ops.modulated_conv import modulated_conv2d

NOISE_MODES = ("random", "const", "none")
Options = dict[str, Any] | None  # keyword arguments passed on to a sub-network; None: defaults
DEFAULT_FILTER = (1, 3, 3, 1)  # binomial low-pass used for every up/downsampling


def normalize_2nd_moment(x: torch.Tensor, *, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """Scale x so its mean square along `dim` is 1 (how z and class embeddings enter mapping)."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def _compute_dtype(
    use_fp16: bool, device: torch.device, force_fp32: bool, *, bf16: bool = False
) -> torch.dtype:
    # float16 only pays off (and is only tested by NVlabs) on CUDA. bf16 (a lever, see
    # SpeedLevers) runs on any device: on a CPU that is how its tests see it.
    if use_fp16 and not force_fp32 and bf16:
        return torch.bfloat16
    if use_fp16 and not force_fp32 and device.type == "cuda":
        return torch.float16
    return torch.float32


def _memory_format(channels_last: bool, dtype: torch.dtype) -> torch.memory_format:
    if channels_last and dtype == torch.float16:
        return torch.channels_last
    return torch.contiguous_format


class SpeedLevers:
    """Run-time switches of a block's arithmetic, not part of its architecture (never saved).

    channels_last: the block's activations in channels-last memory format at any precision
    (the fp16_channels_last argument only does so in float16); bf16: the blocks that run in
    reduced precision use bfloat16 instead of float16 (wider range, fewer mantissa bits).
    """

    lever_channels_last: bool = False
    lever_bf16: bool = False

    def _block_format(self, dtype: torch.dtype, channels_last: bool) -> torch.memory_format:
        if self.lever_channels_last:
            return torch.channels_last
        return _memory_format(channels_last, dtype)


def set_speed_levers(
    module: torch.nn.Module, *, channels_last: bool = False, bf16: bool = False
) -> torch.nn.Module:
    """Set the SpeedLevers of every block in `module`; returns module. Results agree with the
    levers off to float rounding (bf16: to its 8 mantissa bits)."""
    for layer in module.modules():
        if isinstance(layer, SpeedLevers):
            layer.lever_channels_last = channels_last
            layer.lever_bf16 = bf16
    return module


def _check_noise_mode(noise_mode: str) -> None:
    if noise_mode not in NOISE_MODES:
        raise ValueError(f"noise_mode must be one of {NOISE_MODES}, not {noise_mode!r}")


# ----------------------------------------------------------------------------- layers


class UsesFusedOps:
    """A layer whose ops run fused CUDA kernels where they can ('cuda') or never ('ref')."""

    op_impl: str = "cuda"


def set_op_impl(module: torch.nn.Module, impl: str) -> torch.nn.Module:
    """Make every layer in `module` run its ops with `impl` ('cuda' or 'ref'); returns module.

    'cuda' is the default and falls back to the reference path off CUDA or when a kernel
    cannot be built; 'ref' forces pure PyTorch (the reference that benchmarks compare to).
    """
    custom_ops.check_impl(impl)
    for layer in module.modules():
        if isinstance(layer, UsesFusedOps):
            layer.op_impl = impl
    return module


class FullyConnectedLayer(torch.nn.Module, UsesFusedOps):
    """Dense layer with equalized learning rate: weight stored /lr_multiplier, scaled at run time."""

    def __init__(
        self,
        in_features: int,  # number of input features
        out_features: int,  # number of output features
        bias: bool = True,  # add a bias after the matmul
        activation: str = "linear",  # an activation of ops.bias_act ("linear", "lrelu", ...)
        lr_multiplier: float = 1,  # learning-rate multiplier (0.01 in the mapping network)
        bias_init: float = 0,  # initial value of every bias (1 for style affines)
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        self.weight = torch.nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = (
            torch.nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        )
        self.weight_gain = lr_multiplier / math.sqrt(in_features)  # a float, as published
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [N, in_features] -> [N, out_features]."""
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, act=self.activation, impl=self.op_impl)

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, activation={self.activation}"


class Conv2dLayer(torch.nn.Module, UsesFusedOps):
    """Convolution with equalized learning rate, optional FIR up/downsampling, bias and activation."""

    def __init__(
        self,
        in_channels: int,  # number of input channels
        out_channels: int,  # number of output channels
        kernel_size: int,  # width and height of the kernel
        bias: bool = True,  # add a bias before the activation
        activation: str = "linear",  # an activation of ops.bias_act
        up: int = 1,  # integer upsampling factor
        down: int = 1,  # integer downsampling factor
        resample_filter: Sequence[float] = DEFAULT_FILTER,  # low-pass taps for resampling
        conv_clamp: float | None = None,  # clamp outputs to +-this; None: no clamp
        channels_last: bool = False,  # store the weight channels-last (fp16 speed-up)
        trainable: bool = True,  # False: weight and bias are buffers (frozen layers)
    ) -> None:
        super().__init__()
        self.activation = activation
        self.up = up
        self.down = down
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", upfirdn2d.setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.act_gain = activation_gain(activation)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        weight = torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(
            memory_format=memory_format
        )
        bias_tensor = torch.zeros([out_channels]) if bias else None
        if trainable:
            self.weight = torch.nn.Parameter(weight)
            self.bias = torch.nn.Parameter(bias_tensor) if bias_tensor is not None else None
        else:
            self.register_buffer("weight", weight)
            if bias_tensor is not None:
                self.register_buffer("bias", bias_tensor)
            else:
                self.bias = None

    def forward(self, x: torch.Tensor, gain: float = 1) -> torch.Tensor:
        """x [N, in_channels, H, W] -> [N, out_channels, H*up/down, W*up/down]."""
        w = self.weight * self.weight_gain
        b = self.bias.to(x.dtype) if self.bias is not None else None
        x = conv2d_resample(
            x, w.to(x.dtype), f=self.resample_filter, up=self.up, down=self.down,
            padding=self.padding, flip_weight=(self.up == 1),  # flip only matters for speed
            impl=self.op_impl,
        )  # fmt: skip
        act_clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(
            x, b, act=self.activation, gain=self.act_gain * gain, clamp=act_clamp,
            impl=self.op_impl,
        )  # fmt: skip


class MappingNetwork(torch.nn.Module):
    """z (and class c) -> w: an MLP with lr multiplier 0.01, w broadcast to num_ws copies."""

    def __init__(
        self,
        z_dim: int,  # input latent dimensionality (0: no latent, e.g. D's class mapping)
        c_dim: int,  # conditioning label dimensionality (0: unconditional)
        w_dim: int,  # intermediate latent dimensionality
        num_ws: int | None,  # copies of w to output; None: output [N, w_dim] without copies
        num_layers: int = 8,  # number of fully-connected layers
        embed_features: int | None = None,  # label embedding size; None: w_dim
        layer_features: int | None = None,  # hidden layer size; None: w_dim
        activation: str = "lrelu",  # activation of every layer
        lr_multiplier: float = 0.01,  # learning-rate multiplier of every layer
        w_avg_beta: float | None = 0.995,  # decay of the tracked mean w; None: no tracking
    ) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.num_ws = num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta
        if embed_features is None:
            embed_features = w_dim
        if c_dim == 0:
            embed_features = 0
        if layer_features is None:
            layer_features = w_dim
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for idx in range(num_layers):
            layer = FullyConnectedLayer(
                features[idx], features[idx + 1], activation=activation, lr_multiplier=lr_multiplier
            )
            setattr(self, f"fc{idx}", layer)
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(
        self,
        z: torch.Tensor | None,
        c: torch.Tensor | None,
        truncation_psi: float = 1,
        truncation_cutoff: int | None = None,
        update_emas: bool = False,
    ) -> torch.Tensor:
        """z [N, z_dim], c [N, c_dim] -> ws [N, num_ws, w_dim] (or w [N, w_dim] if num_ws is None).

        truncation_psi: 1 keeps w, 0 gives w_avg, in between lerps towards w_avg;
        truncation_cutoff: truncate only the first this many ws (None: all);
        update_emas: move w_avg towards this batch's mean w (training only). Unlike
        stylegan2-ada-pytorch, where train() mode alone updates it, only this flag does.
        """
        x = None
        if self.z_dim > 0:
            _check_shape(z, [None, self.z_dim], "z")
            x = normalize_2nd_moment(z.to(torch.float32))
        if self.c_dim > 0:
            _check_shape(c, [None, self.c_dim], "c")
            y = normalize_2nd_moment(self.embed(c.to(torch.float32)))
            x = torch.cat([x, y], dim=1) if x is not None else y
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        if update_emas and self.w_avg_beta is not None and self.num_ws is not None:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat([1, self.num_ws, 1])  # [N, num_ws, w_dim]
        if truncation_psi != 1:
            if self.w_avg_beta is None or self.num_ws is None:
                raise ValueError("truncation needs a mapping network that tracks w_avg")
            if truncation_cutoff is None:
                x = self.w_avg.lerp(x, truncation_psi)
            else:
                x = x.clone()
                x[:, :truncation_cutoff] = self.w_avg.lerp(x[:, :truncation_cutoff], truncation_psi)
        return x

    def extra_repr(self) -> str:
        return f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, num_ws={self.num_ws}"


class SynthesisLayer(torch.nn.Module, UsesFusedOps):
    """Modulated 3x3 conv with per-pixel noise, bias and activation; up=2 doubles the size."""

    def __init__(
        self,
        in_channels: int,  # number of input channels
        out_channels: int,  # number of output channels
        w_dim: int,  # intermediate latent dimensionality
        resolution: int,  # output resolution
        kernel_size: int = 3,  # convolution kernel size
        up: int = 1,  # integer upsampling factor
        use_noise: bool = True,  # add per-pixel noise scaled by a learned strength
        activation: str = "lrelu",  # an activation of ops.bias_act
        resample_filter: Sequence[float] = DEFAULT_FILTER,  # low-pass taps for upsampling
        conv_clamp: float | None = None,  # clamp outputs to +-this; None: no clamp
        channels_last: bool = False,  # store the weight channels-last (fp16 speed-up)
    ) -> None:
        super().__init__()
        self.resolution = resolution
        self.up = up
        self.use_noise = use_noise
        self.activation = activation
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", upfirdn2d.setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.act_gain = activation_gain(activation)
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.weight = torch.nn.Parameter(
            torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(
                memory_format=memory_format
            )
        )
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = torch.nn.Parameter(torch.zeros([]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))

    def forward(
        self,
        x: torch.Tensor,
        w: torch.Tensor,
        noise_mode: str = "random",
        fused_modconv: bool = True,
        gain: float = 1,
    ) -> torch.Tensor:
        """x [N, in_channels, R/up, R/up], w [N, w_dim] -> [N, out_channels, R, R]."""
        _check_noise_mode(noise_mode)
        styles = self.affine(w)  # [N, in_channels]
        noise = None
        if self.use_noise and noise_mode == "random":
            noise = (
                torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device)
                * self.noise_strength
            )
        if self.use_noise and noise_mode == "const":
            noise = self.noise_const * self.noise_strength  # [R, R], same for every sample
        x = modulated_conv2d(
            x, self.weight, styles, noise=noise, up=self.up, padding=self.padding,
            resample_filter=self.resample_filter, flip_weight=(self.up == 1),
            fused_modconv=fused_modconv, impl=self.op_impl,
        )  # fmt: skip
        act_clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(
            x,
            self.bias.to(x.dtype),
            act=self.activation,
            gain=self.act_gain * gain,
            clamp=act_clamp,
            impl=self.op_impl,
        )


class ToRGBLayer(torch.nn.Module, UsesFusedOps):
    """Modulated 1x1 conv to image channels, without demodulation."""

    def __init__(
        self,
        in_channels: int,  # number of input channels
        out_channels: int,  # number of image channels
        w_dim: int,  # intermediate latent dimensionality
        kernel_size: int = 1,  # convolution kernel size
        conv_clamp: float | None = None,  # clamp outputs to +-this; None: no clamp
        channels_last: bool = False,  # store the weight channels-last (fp16 speed-up)
    ) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.weight = torch.nn.Parameter(
            torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(
                memory_format=memory_format
            )
        )
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused_modconv: bool = True) -> torch.Tensor:
        """x [N, in_channels, R, R], w [N, w_dim] -> [N, out_channels, R, R]."""
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(
            x, self.weight, styles, demodulate=False, fused_modconv=fused_modconv,
            impl=self.op_impl,
        )  # fmt: skip
        return bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp, impl=self.op_impl)


# ----------------------------------------------------------------------------- generator


class SynthesisBlock(torch.nn.Module, UsesFusedOps, SpeedLevers):
    """One resolution of the generator: (const or up-conv) + conv + toRGB added to the image."""

    def __init__(
        self,
        in_channels: int,  # input channels; 0 for the first block, which starts from a constant
        out_channels: int,  # output channels
        w_dim: int,  # intermediate latent dimensionality
        resolution: int,  # resolution of this block
        img_channels: int,  # number of image channels
        is_last: bool,  # the block at the output resolution
        architecture: str = "skip",  # "orig", "skip" or "resnet"
        resample_filter: Sequence[float] = DEFAULT_FILTER,  # low-pass taps for upsampling
        conv_clamp: float | None = None,  # clamp conv outputs to +-this; None: no clamp
        use_fp16: bool = False,  # run this block in float16 (CUDA only)
        fp16_channels_last: bool = False,  # channels-last memory format with float16
        **layer_kwargs: Any,  # SynthesisLayer options: kernel_size, use_noise, activation
    ) -> None:
        super().__init__()
        if architecture not in ("orig", "skip", "resnet"):
            raise ValueError(
                f"architecture must be 'orig', 'skip' or 'resnet', not {architecture!r}"
            )
        self.in_channels = in_channels
        self.w_dim = w_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.is_last = is_last
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.channels_last = use_fp16 and fp16_channels_last
        self.register_buffer("resample_filter", upfirdn2d.setup_filter(resample_filter))
        self.num_conv = 0
        self.num_torgb = 0
        common = dict(w_dim=w_dim, resolution=resolution, conv_clamp=conv_clamp)
        if in_channels == 0:
            self.const = torch.nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(
                in_channels, out_channels, up=2, resample_filter=resample_filter,
                channels_last=self.channels_last, **common, **layer_kwargs,
            )  # fmt: skip
            self.num_conv += 1
        self.conv1 = SynthesisLayer(
            out_channels, out_channels, channels_last=self.channels_last, **common, **layer_kwargs
        )
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(
                out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp,
                channels_last=self.channels_last,
            )  # fmt: skip
            self.num_torgb += 1
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(
                in_channels, out_channels, kernel_size=1, bias=False, up=2,
                resample_filter=resample_filter, channels_last=self.channels_last,
            )  # fmt: skip

    def forward(
        self,
        x: torch.Tensor | None,
        img: torch.Tensor | None,
        ws: torch.Tensor,
        force_fp32: bool = False,
        fused_modconv: bool | None = None,
        noise_mode: str = "random",
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x [N, C, R/2, R/2], img [N, img_channels, R/2, R/2], ws [N, num_conv+num_torgb, w_dim]."""
        w_iter = iter(ws.unbind(dim=1))
        dtype = _compute_dtype(self.use_fp16, ws.device, force_fp32, bf16=self.lever_bf16)
        memory_format = self._block_format(dtype, self.channels_last)
        if fused_modconv is None:
            # Grouped convs are fastest at inference; training backprops faster through plain ones.
            fused_modconv = (not self.training) and (dtype == torch.float32 or ws.shape[0] == 1)

        if self.in_channels == 0:
            x = self.const.to(dtype=dtype).unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
            x = x.contiguous(memory_format=memory_format)  # [N, C, 4, 4]
        else:
            x = x.to(dtype=dtype, memory_format=memory_format)

        layer_kwargs = dict(fused_modconv=fused_modconv, noise_mode=noise_mode)
        if self.in_channels == 0:
            x = self.conv1(x, next(w_iter), **layer_kwargs)
        elif self.architecture == "resnet":
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x, next(w_iter), **layer_kwargs)
            x = self.conv1(x, next(w_iter), gain=math.sqrt(0.5), **layer_kwargs)
            x = y + x
        else:
            x = self.conv0(x, next(w_iter), **layer_kwargs)
            x = self.conv1(x, next(w_iter), **layer_kwargs)

        if img is not None:
            img = upfirdn2d.upsample2d(img, self.resample_filter, impl=self.op_impl)
        if self.is_last or self.architecture == "skip":
            y = self.torgb(x, next(w_iter), fused_modconv=fused_modconv)
            y = y.to(dtype=torch.float32, memory_format=torch.contiguous_format)
            img = img + y if img is not None else y
        return x, img


class SynthesisNetwork(torch.nn.Module):
    """ws [N, num_ws, w_dim] -> image [N, img_channels, R, R]: blocks b4, b8, ..., b{R}."""

    def __init__(
        self,
        w_dim: int,  # intermediate latent dimensionality
        img_resolution: int,  # output resolution, a power of two from 4 to 1024 (or more)
        img_channels: int,  # number of image channels
        channel_base: int = 32768,  # channels at a resolution = min(channel_base // res, channel_max)
        channel_max: int = 512,  # most channels in any block
        num_fp16_res: int = 0,  # run the top this many resolutions in float16 (CUDA only)
        **block_kwargs: Any,  # SynthesisBlock options: architecture, conv_clamp, resample_filter, ...
    ) -> None:
        super().__init__()
        if img_resolution < 4 or img_resolution & (img_resolution - 1) != 0:
            raise ValueError(f"img_resolution must be a power of two >= 4, got {img_resolution}")
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_resolution_log2 = int(math.log2(img_resolution))
        self.img_channels = img_channels
        self.block_resolutions = [2**i for i in range(2, self.img_resolution_log2 + 1)]
        channels = {res: min(channel_base // res, channel_max) for res in self.block_resolutions}
        fp16_resolution = max(2 ** (self.img_resolution_log2 + 1 - num_fp16_res), 8)
        self.num_ws = 0
        for res in self.block_resolutions:
            is_last = res == img_resolution
            block = SynthesisBlock(
                channels[res // 2] if res > 4 else 0, channels[res], w_dim=w_dim,
                resolution=res, img_channels=img_channels, is_last=is_last,
                use_fp16=(res >= fp16_resolution), **block_kwargs,
            )  # fmt: skip
            self.num_ws += block.num_conv
            if is_last:
                self.num_ws += block.num_torgb
            setattr(self, f"b{res}", block)

    def forward(
        self,
        ws: torch.Tensor,
        noise_mode: str = "random",
        force_fp32: bool = False,
        fused_modconv: bool | None = None,
    ) -> torch.Tensor:
        """ws [N, num_ws, w_dim] -> img [N, img_channels, R, R] float32, roughly in [-1, 1].

        noise_mode: 'random' fresh noise per call, 'const' the stored noise_const buffers
        (deterministic), 'none' no noise; force_fp32: never use float16; fused_modconv:
        None picks the faster form for training or inference.
        """
        _check_noise_mode(noise_mode)
        _check_shape(ws, [None, self.num_ws, self.w_dim], "ws")
        ws = ws.to(torch.float32)
        block_ws = []
        w_idx = 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            # A block's toRGB shares its w with the next block's first conv.
            block_ws.append(ws.narrow(1, w_idx, block.num_conv + block.num_torgb))
            w_idx += block.num_conv
        x = img = None
        for res, cur_ws in zip(self.block_resolutions, block_ws, strict=True):
            block = getattr(self, f"b{res}")
            x, img = block(
                x, img, cur_ws, force_fp32=force_fp32, fused_modconv=fused_modconv,
                noise_mode=noise_mode,
            )  # fmt: skip
        return img

    def extra_repr(self) -> str:
        return f"w_dim={self.w_dim}, num_ws={self.num_ws}, img_resolution={self.img_resolution}"


class Generator(torch.nn.Module):
    """StyleGAN2 generator: mapping (z, c -> ws) then synthesis (ws -> image).

    G(z, c) returns images [N, img_channels, R, R] in about [-1, 1]. `init_kwargs` holds
    the constructor arguments as a JSON-serialisable dict: Generator(**G.init_kwargs)
    rebuilds the same architecture.
    """

    def __init__(
        self,
        z_dim: int = 512,  # input latent dimensionality
        c_dim: int = 0,  # conditioning label dimensionality (0: unconditional)
        w_dim: int = 512,  # intermediate latent dimensionality
        img_resolution: int = 1024,  # output resolution, a power of two from 4 to 1024
        img_channels: int = 3,  # number of output channels
        mapping_kwargs: Options = None,  # MappingNetwork: num_layers (8; "auto": 2), ...
        synthesis_kwargs: Options = None,  # SynthesisNetwork: channel_base, conv_clamp, ...
    ) -> None:
        super().__init__()
        mapping_kwargs = dict(mapping_kwargs or {})
        synthesis_kwargs = dict(synthesis_kwargs or {})
        self.init_kwargs = _plain(
            dict(
                z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=img_resolution,
                img_channels=img_channels, mapping_kwargs=mapping_kwargs,
                synthesis_kwargs=synthesis_kwargs,
            )
        )  # fmt: skip
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        # Synthesis is registered first, as published, so state dicts list it first too.
        self.synthesis = SynthesisNetwork(
            w_dim=w_dim,
            img_resolution=img_resolution,
            img_channels=img_channels,
            **synthesis_kwargs,
        )
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(
            z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws, **mapping_kwargs
        )

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None,
        truncation_psi: float = 1,
        truncation_cutoff: int | None = None,
        update_emas: bool = False,
        noise_mode: str = "random",
        force_fp32: bool = False,
        fused_modconv: bool | None = None,
    ) -> torch.Tensor:
        """z [N, z_dim], c [N, c_dim] (or None when c_dim is 0) -> img [N, img_channels, R, R].

        noise_mode defaults to 'random' as published (training); pass 'const' for
        reproducible images.
        """
        ws = self.mapping(
            z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
            update_emas=update_emas,
        )  # fmt: skip
        return self.synthesis(
            ws, noise_mode=noise_mode, force_fp32=force_fp32, fused_modconv=fused_modconv
        )


# ----------------------------------------------------------------------------- discriminator


class DiscriminatorBlock(torch.nn.Module, UsesFusedOps, SpeedLevers):
    """One resolution of the discriminator: (fromRGB) + conv + down-conv, with a resnet skip."""

    def __init__(
        self,
        in_channels: int,  # input channels; 0 for the first block, which reads the image
        tmp_channels: int,  # channels between the two convs
        out_channels: int,  # output channels
        resolution: int,  # resolution of this block's input
        img_channels: int,  # number of image channels
        first_layer_idx: int,  # index of this block's first layer (for freeze_layers)
        architecture: str = "resnet",  # "orig", "skip" or "resnet"
        activation: str = "lrelu",  # an activation of ops.bias_act
        resample_filter: Sequence[float] = DEFAULT_FILTER,  # low-pass taps for downsampling
        conv_clamp: float | None = None,  # clamp conv outputs to +-this; None: no clamp
        use_fp16: bool = False,  # run this block in float16 (CUDA only)
        fp16_channels_last: bool = False,  # channels-last memory format with float16
        freeze_layers: int = 0,  # layers below this index are frozen (buffers, not parameters)
    ) -> None:
        super().__init__()
        if in_channels not in (0, tmp_channels):
            raise ValueError(f"in_channels must be 0 or {tmp_channels}, got {in_channels}")
        if architecture not in ("orig", "skip", "resnet"):
            raise ValueError(
                f"architecture must be 'orig', 'skip' or 'resnet', not {architecture!r}"
            )
        self.in_channels = in_channels
        self.resolution = resolution
        self.img_channels = img_channels
        self.first_layer_idx = first_layer_idx
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.channels_last = use_fp16 and fp16_channels_last
        self.register_buffer("resample_filter", upfirdn2d.setup_filter(resample_filter))
        self.num_layers = 0

        def next_trainable() -> bool:
            trainable = self.first_layer_idx + self.num_layers >= freeze_layers
            self.num_layers += 1
            return trainable

        common = dict(
            activation=activation, conv_clamp=conv_clamp, channels_last=self.channels_last
        )
        if in_channels == 0 or architecture == "skip":
            self.fromrgb = Conv2dLayer(
                img_channels, tmp_channels, kernel_size=1, trainable=next_trainable(), **common
            )
        self.conv0 = Conv2dLayer(
            tmp_channels, tmp_channels, kernel_size=3, trainable=next_trainable(), **common
        )
        self.conv1 = Conv2dLayer(
            tmp_channels, out_channels, kernel_size=3, down=2, trainable=next_trainable(),
            resample_filter=resample_filter, **common,
        )  # fmt: skip
        if architecture == "resnet":
            self.skip = Conv2dLayer(
                tmp_channels, out_channels, kernel_size=1, bias=False, down=2,
                trainable=next_trainable(), resample_filter=resample_filter,
                channels_last=self.channels_last,
            )  # fmt: skip

    def forward(
        self, x: torch.Tensor | None, img: torch.Tensor | None, force_fp32: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x [N, tmp_channels, R, R] (None in the first block), img [N, img_channels, R, R]."""
        device = (x if x is not None else img).device
        dtype = _compute_dtype(self.use_fp16, device, force_fp32, bf16=self.lever_bf16)
        memory_format = self._block_format(dtype, self.channels_last)
        if x is not None:
            x = x.to(dtype=dtype, memory_format=memory_format)
        if self.in_channels == 0 or self.architecture == "skip":
            img = img.to(dtype=dtype, memory_format=memory_format)
            y = self.fromrgb(img)
            x = x + y if x is not None else y
            img = (
                upfirdn2d.downsample2d(img, self.resample_filter, impl=self.op_impl)
                if self.architecture == "skip"
                else None
            )
        if self.architecture == "resnet":
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x)
            x = self.conv1(x, gain=math.sqrt(0.5))
            x = y + x
        else:
            x = self.conv0(x)
            x = self.conv1(x)
        return x, img


class MinibatchStdLayer(torch.nn.Module):
    """Appends the stddev across groups of samples as extra channels (discourages mode collapse)."""

    def __init__(
        self,
        group_size: int | None,  # samples per group; None: the whole minibatch
        num_channels: int = 1,  # number of stddev channels to append
    ) -> None:
        super().__init__()
        self.group_size = group_size
        self.num_channels = num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [N, C, H, W] -> [N, C + num_channels, H, W]; N must be divisible by the group size."""
        n, c, h, w = x.shape
        g = min(self.group_size, n) if self.group_size is not None else n
        f = self.num_channels
        if n % g != 0:
            raise ValueError(f"batch size {n} is not divisible by the minibatch-stddev group {g}")
        y = x.reshape(g, -1, f, c // f, h, w)  # [G, n, F, c, H, W]: sample i goes to group i % n
        y = y - y.mean(dim=0)
        y = y.square().mean(dim=0)  # [n, F, c, H, W] variance over the group
        y = (y + 1e-8).sqrt()
        y = y.mean(dim=[2, 3, 4])  # [n, F]
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)  # [N, F, H, W]
        return torch.cat([x, y], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"


class DiscriminatorEpilogue(torch.nn.Module):
    """The 4x4 end of D: minibatch stddev, conv, fc, and the output (projected on c when conditional)."""

    def __init__(
        self,
        in_channels: int,  # number of input channels
        cmap_dim: int,  # dimensionality of the class map (0: unconditional, one logit)
        resolution: int,  # resolution of this block (4)
        img_channels: int,  # number of image channels
        architecture: str = "resnet",  # "orig", "skip" or "resnet"
        mbstd_group_size: int | None = 4,  # minibatch-stddev group size; None: whole batch
        mbstd_num_channels: int = 1,  # minibatch-stddev channels (0: no mbstd layer)
        activation: str = "lrelu",  # an activation of ops.bias_act
        conv_clamp: float | None = None,  # clamp conv outputs to +-this; None: no clamp
        reads_image: bool = False,  # no block before it (a 4x4 D): start from fromRGB
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.cmap_dim = cmap_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.architecture = architecture
        self.reads_image = reads_image
        if architecture == "skip" or reads_image:
            self.fromrgb = Conv2dLayer(
                img_channels, in_channels, kernel_size=1, activation=activation
            )
        self.mbstd = (
            MinibatchStdLayer(mbstd_group_size, num_channels=mbstd_num_channels)
            if mbstd_num_channels > 0
            else None
        )
        self.conv = Conv2dLayer(
            in_channels + mbstd_num_channels, in_channels, kernel_size=3, activation=activation,
            conv_clamp=conv_clamp,
        )  # fmt: skip
        self.fc = FullyConnectedLayer(
            in_channels * resolution**2, in_channels, activation=activation
        )
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(
        self, x: torch.Tensor | None, img: torch.Tensor | None, cmap: torch.Tensor | None
    ) -> torch.Tensor:
        """x [N, C, 4, 4] (None if reads_image), cmap [N, cmap_dim] or None -> logits [N, 1]."""
        if self.architecture == "skip" or self.reads_image:
            y = self.fromrgb(img.to(dtype=torch.float32, memory_format=torch.contiguous_format))
            x = y if x is None else x.to(torch.float32, memory_format=torch.contiguous_format) + y
        else:
            x = x.to(dtype=torch.float32, memory_format=torch.contiguous_format)
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = self.fc(x.flatten(1))
        x = self.out(x)
        if self.cmap_dim > 0:
            # Projection discriminator: the logit is the scaled dot product with the class map.
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / math.sqrt(self.cmap_dim))
        return x


class Discriminator(torch.nn.Module):
    """StyleGAN2 discriminator: D(img, c) -> logits [N, 1] (resnet architecture by default).

    `init_kwargs` holds the constructor arguments as a JSON-serialisable dict.
    """

    def __init__(
        self,
        c_dim: int = 0,  # conditioning label dimensionality (0: unconditional)
        img_resolution: int = 1024,  # input resolution, a power of two from 4 to 1024
        img_channels: int = 3,  # number of input channels
        architecture: str = "resnet",  # "orig", "skip" or "resnet"
        channel_base: int = 32768,  # channels at a resolution = min(channel_base // res, channel_max)
        channel_max: int = 512,  # most channels in any block
        num_fp16_res: int = 0,  # run the top this many resolutions in float16 (CUDA only)
        conv_clamp: float | None = None,  # clamp conv outputs to +-this; None: no clamp
        cmap_dim: int | None = None,  # class-map dimensionality; None: channels at 4x4
        block_kwargs: Options = None,  # DiscriminatorBlock: activation, freeze_layers, ...
        mapping_kwargs: Options = None,  # MappingNetwork of the class map: num_layers, ...
        epilogue_kwargs: Options = None,  # DiscriminatorEpilogue: mbstd_group_size, ...
    ) -> None:
        super().__init__()
        if img_resolution < 4 or img_resolution & (img_resolution - 1) != 0:
            raise ValueError(f"img_resolution must be a power of two >= 4, got {img_resolution}")
        block_kwargs = dict(block_kwargs or {})
        mapping_kwargs = dict(mapping_kwargs or {})
        epilogue_kwargs = dict(epilogue_kwargs or {})
        self.init_kwargs = _plain(
            dict(
                c_dim=c_dim, img_resolution=img_resolution, img_channels=img_channels,
                architecture=architecture, channel_base=channel_base, channel_max=channel_max,
                num_fp16_res=num_fp16_res, conv_clamp=conv_clamp, cmap_dim=cmap_dim,
                block_kwargs=block_kwargs, mapping_kwargs=mapping_kwargs,
                epilogue_kwargs=epilogue_kwargs,
            )
        )  # fmt: skip
        self.c_dim = c_dim
        self.img_resolution = img_resolution
        self.img_resolution_log2 = int(math.log2(img_resolution))
        self.img_channels = img_channels
        self.block_resolutions = [2**i for i in range(self.img_resolution_log2, 2, -1)]
        channels = {
            res: min(channel_base // res, channel_max) for res in [*self.block_resolutions, 4]
        }
        fp16_resolution = max(2 ** (self.img_resolution_log2 + 1 - num_fp16_res), 8)
        if cmap_dim is None:
            cmap_dim = channels[4]
        if c_dim == 0:
            cmap_dim = 0
        common = dict(img_channels=img_channels, architecture=architecture, conv_clamp=conv_clamp)
        layer_idx = 0
        for res in self.block_resolutions:
            block = DiscriminatorBlock(
                channels[res] if res < img_resolution else 0, channels[res], channels[res // 2],
                resolution=res, first_layer_idx=layer_idx, use_fp16=(res >= fp16_resolution),
                **block_kwargs, **common,
            )  # fmt: skip
            setattr(self, f"b{res}", block)
            layer_idx += block.num_layers
        if c_dim > 0:
            self.mapping = MappingNetwork(
                z_dim=0, c_dim=c_dim, w_dim=cmap_dim, num_ws=None, w_avg_beta=None, **mapping_kwargs
            )
        # Published D needs at least 8x8; at 4x4 the epilogue reads the image itself.
        self.b4 = DiscriminatorEpilogue(
            channels[4], cmap_dim=cmap_dim, resolution=4, reads_image=(img_resolution == 4),
            **epilogue_kwargs, **common,
        )  # fmt: skip

    def forward(
        self, img: torch.Tensor, c: torch.Tensor | None, force_fp32: bool = False
    ) -> torch.Tensor:
        """img [N, img_channels, R, R] in [-1, 1], c [N, c_dim] (or None) -> logits [N, 1]."""
        _check_shape(
            img, [None, self.img_channels, self.img_resolution, self.img_resolution], "img"
        )
        x = None
        for res in self.block_resolutions:
            x, img = getattr(self, f"b{res}")(x, img, force_fp32=force_fp32)
        cmap = self.mapping(None, c) if self.c_dim > 0 else None
        return self.b4(x, img, cmap)


# ----------------------------------------------------------------------------- helpers


def _check_shape(t: torch.Tensor | None, shape: list[int | None], name: str) -> None:
    if (
        t is None
        or t.ndim != len(shape)
        or any(s is not None and t.shape[i] != s for i, s in enumerate(shape))
    ):
        want = ", ".join(
            "N" if i == 0 and s is None else "*" if s is None else str(s)
            for i, s in enumerate(shape)
        )
        got = "None" if t is None else str(list(t.shape))
        raise ValueError(f"{name} must have shape [{want}], got {got}")


def _plain(value: Any) -> Any:
    """A JSON-serialisable copy: dicts with str keys, tuples as lists, numbers and strings."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if hasattr(value, "item"):  # numpy / torch scalars from published pickles
        return value.item()
    raise TypeError(f"constructor argument {value!r} is not JSON-serialisable")
