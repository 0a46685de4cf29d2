"""ADA's differentiable augmentations of the images D sees, and the controller that tunes p.

The pipeline follows StyleGAN2-ADA. Its default, "bgc", is pixel blitting (x-flip, 90°
rotations, integer translation), general geometry (isotropic scale, rotation before and
after an anisotropic scale, fractional translation) and colour (brightness, contrast, luma
flip, hue rotation, saturation); image-space filtering, additive noise and cutout are
there for the longer presets ("bgcf", "bgcfn", "bgcfnc"). Each augmentation is applied
per image with probability p x its multiplier. The geometric transforms are composed as
3x3 matrices and applied in one resampling (reflect padding, 2x upsampling with the sym6
wavelet, bilinear sampling, 2x downsampling); the colour transforms as one 4x4 matrix in
RGB. Everything is differentiable in the images, and the geometric part twice (R1 differentiates D's
gradient once more). Random numbers come from torch's global generator on the images'
device, so seeded runs repeat and a resumed run continues after restoring the RNG state.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from lyriscope.trainers.ops import upfirdn2d
from lyriscope.trainers.ops.grid_sample import grid_sample

# Lowpass decomposition taps of the Symlet-6 wavelet (orthogonal: upsampling and then
# downsampling with it is the identity, so whole-pixel moves survive the resampling).
# Symlet-2 splits the spectrum into the octave bands of the image-space filter.
SYM6 = (
    0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
    0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
    -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148,
)  # fmt: skip
SYM2 = (-0.12940952255092145, 0.22414386804185735, 0.836516303737469, 0.48296291314469025)
# Share of each filter band (coarse to fine) in a natural image's power (a 1/f spectrum).
BAND_POWER = (10 / 13, 1 / 13, 1 / 13, 1 / 13)

BLIT = ("xflip", "rotate90", "xint")
GEOM = ("scale", "rotate", "aniso", "xfrac")
COLOR = ("brightness", "contrast", "lumaflip", "hue", "saturation")
FILTER = ("imgfilter",)
NOISE = ("noise",)
CUTOUT = ("cutout",)
ALL = BLIT + GEOM + COLOR + FILTER + NOISE + CUTOUT  # every probability multiplier
# Names AugmentConfig.preset() knows.
PRESETS = ("blit", "geom", "color", "filter", "noise", "cutout",
           "bg", "bgc", "bgcf", "bgcfn", "bgcfnc")  # fmt: skip


@dataclass(frozen=True)
class AugmentConfig:
    """Probability multipliers (0 turns an augmentation off) and strengths; defaults = "bgc"."""

    # Pixel blitting.
    xflip: float = 1  # mirror left-right
    rotate90: float = 1  # rotate by a random multiple of 90°
    xint: float = 1  # translate by whole pixels
    xint_max: float = 0.125  # largest integer translation, in image sizes
    # General geometric transformations.
    scale: float = 1  # isotropic scale
    rotate: float = 1  # arbitrary rotation (before and/or after the anisotropic scale)
    aniso: float = 1  # anisotropic scale (x by s, y by 1/s)
    xfrac: float = 1  # fractional translation
    scale_std: float = 0.2  # log2 standard deviation of the isotropic scale
    rotate_max: float = 1  # largest rotation, in half turns (1 = ±180°)
    aniso_std: float = 0.2  # log2 standard deviation of the anisotropic scale
    xfrac_std: float = 0.125  # standard deviation of the fractional translation, in image sizes
    # Colour transformations.
    brightness: float = 1  # add a constant
    contrast: float = 1  # scale around 0 (mid grey)
    lumaflip: float = 1  # mirror the luma, keep the chroma
    hue: float = 1  # rotate around the grey axis
    saturation: float = 1  # scale the chroma
    brightness_std: float = 0.2  # standard deviation of the added constant ([-1, 1] images)
    contrast_std: float = 0.5  # log2 standard deviation of the contrast factor
    hue_max: float = 1  # largest hue rotation, in half turns (1 = ±180°)
    saturation_std: float = 1  # log2 standard deviation of the saturation factor
    # Image-space filtering, noise and cutout (off in "bgc").
    imgfilter: float = 0  # amplify or damp octave bands of the spectrum
    imgfilter_bands: tuple[float, float, float, float] = (1, 1, 1, 1)  # per band, coarse to fine
    imgfilter_std: float = 1  # log2 standard deviation of a band's gain
    noise: float = 0  # add Gaussian noise
    noise_std: float = 0.1  # scale of the noise's (half-normal) standard deviation
    cutout: float = 0  # blank out a square
    cutout_size: float = 0.5  # side of the square, in image sizes

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            values = value if isinstance(value, tuple) else (value,)
            if not all(isinstance(v, int | float) and math.isfinite(v) and v >= 0 for v in values):
                raise ValueError(
                    f"augmentation {field.name}={value!r}: must be a finite number >= 0"
                )
        if len(self.imgfilter_bands) != 4:
            raise ValueError(
                f"augmentation imgfilter_bands={self.imgfilter_bands!r}: needs 4 values "
                f"(coarse to fine)"
            )

    @classmethod
    def preset(cls, name: str) -> AugmentConfig:
        """The published pipelines by name (PRESETS); "bgc" is ADA's default."""
        single = {"blit": BLIT, "geom": GEOM, "color": COLOR, "filter": FILTER,
                  "noise": NOISE, "cutout": CUTOUT}  # fmt: skip
        letters = {"b": BLIT, "g": GEOM, "c": COLOR, "f": FILTER, "n": NOISE}
        if name not in PRESETS:
            raise ValueError(f"augmentation preset {name!r}: choose one of {', '.join(PRESETS)}")
        if name in single:
            chosen = single[name]
        else:  # "bgcfnc": the second "c" is cutout
            chosen = tuple(m for letter in name[:5] for m in letters[letter]) + (
                CUTOUT if len(name) == 6 else ()
            )
        multipliers = {m: 1.0 if m in chosen else 0.0 for m in ALL}
        return dataclasses.replace(cls(), **multipliers)

    def enabled(self, group: tuple[str, ...]) -> bool:
        """Whether any augmentation of `group` (BLIT, GEOM, COLOR, ...) can happen."""
        return any(getattr(self, name) > 0 for name in group)


class AugmentPipe(torch.nn.Module):
    """Augments images [N, C, H, W] (C = 1 or 3, square, in [-1, 1]) with probability p.

    p is a buffer (saved in state_dict, moved with .to()); at p == 0 the output equals
    the input exactly.
    """

    p: torch.Tensor
    geom_filter: torch.Tensor
    filter_bank: torch.Tensor

    def __init__(self, config: AugmentConfig | None = None) -> None:
        super().__init__()
        self.config = AugmentConfig() if config is None else config
        self.register_buffer("p", torch.zeros([]))
        self.register_buffer("geom_filter", upfirdn2d.setup_filter(SYM6), persistent=False)
        bank = torch.as_tensor(band_filters(SYM2, bands=4), dtype=torch.float32)
        self.register_buffer("filter_bank", bank, persistent=False)  # [bands, taps]

    def extra_repr(self) -> str:
        return f"p={float(self.p):.4f}, config={self.config}"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images [N, C, H, W] -> augmented [N, C, H, W], same dtype and device."""
        if images.ndim != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"expected images [N, 1 or 3, H, W], got shape {list(images.shape)}")
        n, _, h, w = images.shape
        config = self.config
        do_blit, do_geom = config.enabled(BLIT), config.enabled(GEOM)
        # Parameters are drawn in a fixed order, so one seed gives one result.
        g_blit, g_general, general = self._draw_geometry(n, h, w, images.device)
        color = self._draw_color(n, images.shape[1], images.device)
        band_gains, filtered = self._draw_band_gains(n, images.device)

        if do_blit or do_geom:
            moved = blit(images, g_blit) if do_blit else images
            if do_geom:
                warped = warp(images, g_blit @ g_general, resample_filter=self.geom_filter)
                # Images without a general transform keep their exact whole-pixel move.
                moved = torch.where(general[:, None, None, None], warped, moved)
            images = moved
        if config.enabled(COLOR):
            images = recolor(images, color)
        if config.enabled(FILTER):
            bank = self.filter_bank.to(images.device)
            kernels = band_gains.to(bank.dtype) @ bank  # [N, taps]
            # Images whose bands all kept gain 1 stay exact (the bank sums to a delta
            # only up to rounding).
            images = torch.where(
                filtered[:, None, None, None], filter_images(images, kernels), images
            )
        if config.noise > 0:
            sigma = torch.randn([n, 1, 1, 1], device=images.device).abs() * config.noise_std
            chosen = self._chance(config.noise, [n, 1, 1, 1], images.device)
            sigma = torch.where(chosen, sigma, torch.zeros_like(sigma))
            images = images + torch.randn_like(images) * sigma.to(images.dtype)
        if config.cutout > 0:
            images = images * self._draw_cutout_mask(images).to(images.dtype)
        return images

    def _chance(self, multiplier: float, shape: list[int], device: torch.device) -> torch.Tensor:
        """Bool [shape]: True with probability multiplier * p."""
        return torch.rand(shape, device=device) < multiplier * self.p.to(device)

    def _draw_geometry(
        self, n: int, h: int, w: int, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Inverse transforms (output -> input pixel): blits [N, 3, 3], general part [N, 3, 3].

        Also returns which images got a general transform, [N] bool.
        """
        config = self.config
        g_blit = torch.eye(3, device=device).repeat(n, 1, 1)  # [N, 3, 3]
        g_general = g_blit.clone()
        general = torch.zeros([n], dtype=torch.bool, device=device)
        zeros = torch.zeros([n], device=device)
        ones = torch.ones([n], device=device)

        if config.xflip > 0:
            flip = torch.floor(torch.rand([n], device=device) * 2)
            flip = torch.where(self._chance(config.xflip, [n], device), flip, zeros)
            g_blit = g_blit @ scale2d(1 - 2 * flip, ones)
        if config.rotate90 > 0:
            quarter = torch.floor(torch.rand([n], device=device) * 4)
            quarter = torch.where(self._chance(config.rotate90, [n], device), quarter, zeros)
            g_blit = g_blit @ rotate2d_quarter(quarter)
        if config.xint > 0:
            t = (torch.rand([n, 2], device=device) * 2 - 1) * config.xint_max  # [N, 2]
            t = torch.where(self._chance(config.xint, [n, 1], device), t, torch.zeros_like(t))
            g_blit = g_blit @ translate2d(-torch.round(t[:, 0] * w), -torch.round(t[:, 1] * h))

        if config.scale > 0:
            s = torch.exp2(torch.randn([n], device=device) * config.scale_std)
            chosen = self._chance(config.scale, [n], device)
            general |= chosen
            s = torch.where(chosen, s, ones)
            g_general = g_general @ scale2d(1 / s, 1 / s)
        # Two chances at rotation; p_rot makes P(pre or post) = rotate * p.
        p_rot = 1 - torch.sqrt((1 - config.rotate * self.p.to(device)).clamp(0, 1))
        if config.rotate > 0:
            g_general = g_general @ self._draw_rotation(n, p_rot, general, device)
        if config.aniso > 0:
            s = torch.exp2(torch.randn([n], device=device) * config.aniso_std)
            chosen = self._chance(config.aniso, [n], device)
            general |= chosen
            s = torch.where(chosen, s, ones)
            g_general = g_general @ scale2d(1 / s, s)
        if config.rotate > 0:
            g_general = g_general @ self._draw_rotation(n, p_rot, general, device)
        if config.xfrac > 0:
            t = torch.randn([n, 2], device=device) * config.xfrac_std  # [N, 2]
            chosen = self._chance(config.xfrac, [n, 1], device)
            general |= chosen[:, 0]
            t = torch.where(chosen, t, torch.zeros_like(t))
            g_general = g_general @ translate2d(-t[:, 0] * w, -t[:, 1] * h)
        return g_blit, g_general, general

    def _draw_rotation(
        self, n: int, p_rot: torch.Tensor, general: torch.Tensor, device: torch.device
    ) -> torch.Tensor:
        """One chance at a rotation: inverse matrices [N, 3, 3]; marks `general` in place."""
        theta = (torch.rand([n], device=device) * 2 - 1) * math.pi * self.config.rotate_max
        chosen = torch.rand([n], device=device) < p_rot
        general |= chosen
        return rotate2d(torch.where(chosen, theta, torch.zeros_like(theta)))

    def _draw_color(self, n: int, channels: int, device: torch.device) -> torch.Tensor:
        """The colour transform [N, 4, 4] acting on (r, g, b, 1)."""
        config = self.config
        eye = torch.eye(4, device=device)
        color = eye.repeat(n, 1, 1)  # [N, 4, 4]
        luma = torch.tensor([1.0, 1.0, 1.0, 0.0], device=device) / math.sqrt(3)  # grey axis
        luma_proj = torch.outer(luma, luma)  # [4, 4] projection onto the grey axis

        if config.brightness > 0:
            b = torch.randn([n], device=device) * config.brightness_std
            b = torch.where(self._chance(config.brightness, [n], device), b, torch.zeros_like(b))
            color = translate3d(b, b, b) @ color
        if config.contrast > 0:
            c = torch.exp2(torch.randn([n], device=device) * config.contrast_std)
            c = torch.where(self._chance(config.contrast, [n], device), c, torch.ones_like(c))
            color = scale3d(c, c, c) @ color
        if config.lumaflip > 0:
            flip = torch.floor(torch.rand([n, 1, 1], device=device) * 2)
            flip = torch.where(
                self._chance(config.lumaflip, [n, 1, 1], device), flip, torch.zeros_like(flip)
            )
            color = (eye - 2 * luma_proj * flip) @ color  # Householder reflection of the luma
        if config.hue > 0 and channels > 1:
            theta = (torch.rand([n], device=device) * 2 - 1) * math.pi * config.hue_max
            theta = torch.where(
                self._chance(config.hue, [n], device), theta, torch.zeros_like(theta)
            )
            grey = 1 / math.sqrt(3)
            color = rotate3d((grey, grey, grey), theta) @ color
        if config.saturation > 0 and channels > 1:
            s = torch.exp2(torch.randn([n, 1, 1], device=device) * config.saturation_std)
            s = torch.where(
                self._chance(config.saturation, [n, 1, 1], device), s, torch.ones_like(s)
            )
            # = luma_proj + s * (eye - luma_proj), written so that s == 1 gives eye exactly.
            color = (eye + (s - 1) * (eye - luma_proj)) @ color
        return color

    def _draw_band_gains(self, n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Gains of the filter bands [N, bands] and which images got any, [N] bool.

        Each band's gain is drawn alone, then all bands are rescaled to keep the power.
        """
        config = self.config
        bands = len(config.imgfilter_bands)
        gains = torch.ones([n, bands], device=device)
        filtered = torch.zeros([n], dtype=torch.bool, device=device)
        if config.imgfilter == 0:
            return gains, filtered
        power = torch.tensor(BAND_POWER, device=device)
        for band, band_strength in enumerate(config.imgfilter_bands):
            gain = torch.exp2(torch.randn([n], device=device) * config.imgfilter_std)
            chosen = self._chance(config.imgfilter * band_strength, [n], device)
            filtered |= chosen
            gain = torch.where(chosen, gain, torch.ones_like(gain))
            t = torch.ones([n, bands], device=device)
            t[:, band] = gain
            # Rescale all bands so the expected power of a natural image stays the same.
            gains = gains * t / (power * t.square()).sum(dim=1, keepdim=True).sqrt()
        return gains, filtered

    def _draw_cutout_mask(self, images: torch.Tensor) -> torch.Tensor:
        """Mask [N, 1, H, W]: 0 inside each image's cut-out square, 1 elsewhere."""
        n, _, h, w = images.shape
        device = images.device
        size = torch.full([n, 2, 1, 1], self.config.cutout_size, device=device)
        chosen = self._chance(self.config.cutout, [n, 1, 1, 1], device)
        size = torch.where(chosen, size, torch.zeros_like(size))  # [N, 2 (x, y), 1, 1]
        centre = torch.rand([n, 2, 1, 1], device=device)
        xs = ((torch.arange(w, device=device) + 0.5) / w).reshape(1, 1, w)
        ys = ((torch.arange(h, device=device) + 0.5) / h).reshape(1, h, 1)
        outside_x = (xs - centre[:, 0]).abs() >= size[:, 0] / 2  # [N, 1, W]
        outside_y = (ys - centre[:, 1]).abs() >= size[:, 1] / 2  # [N, H, 1]
        return (outside_x | outside_y).to(torch.float32)[:, None]  # [N, 1, H, W]


class AdaController:
    """Tunes an AugmentPipe's p from the sign of D's outputs on reals (ADA's heuristic).

    Every `interval` minibatches, rt = E[sign(D(real))] over the logits seen since the last
    adjustment, and p moves by sign(rt - target) * batch * interval / (ada_kimg * 1000),
    never below 0: p can go from 0 to 1 in ada_kimg thousand images.
    """

    def __init__(
        self,
        *,
        target: float = 0.6,  # the rt ADA keeps D at
        ada_kimg: float = 500,  # thousands of images for p to move by 1
        interval: int = 4,  # adjust every this many minibatches
        batch: int,  # images per minibatch (all GPUs together)
    ) -> None:
        if batch < 1 or interval < 1 or not ada_kimg > 0:
            raise ValueError(
                f"AdaController needs batch >= 1, interval >= 1 and ada_kimg > 0, "
                f"got batch={batch}, interval={interval}, ada_kimg={ada_kimg}"
            )
        self.target = float(target)
        self.ada_kimg = float(ada_kimg)
        self.interval = int(interval)
        self.batch = int(batch)
        self._sign_sum: torch.Tensor | None = None  # float64 scalar on the logits' device
        self._count = 0

    @property
    def step_size(self) -> float:
        """How much p moves per adjustment."""
        return self.batch * self.interval / (self.ada_kimg * 1000)

    def accumulate(self, real_logits: torch.Tensor) -> None:
        """Add the signs of D's logits on real images ([N, 1] or any shape) to the stats."""
        signs = real_logits.detach().sign().to(torch.float64).sum()  # stays on device: no sync
        # After a resume the sum lives on the CPU; moving it to the logits costs no sync.
        self._sign_sum = (
            signs if self._sign_sum is None else self._sign_sum.to(signs.device) + signs
        )
        self._count += real_logits.numel()

    def step(self, pipe: AugmentPipe, *, batch_idx: int) -> torch.Tensor | None:
        """After minibatch batch_idx (counted from 1): maybe adjust pipe.p; rt or None.

        rt is a float64 scalar on the logits' device: p moves there too, so the heuristic
        never waits for the GPU (read rt when the stats are written, once per tick).
        """
        if batch_idx % self.interval != 0:
            return None
        if self._count == 0 or self._sign_sum is None:
            return None  # no logits seen: nothing to judge
        rt = self._sign_sum / self._count
        self._sign_sum, self._count = None, 0
        # -1, 0 or +1 as float32: p + direction * step_size rounds as it did on the host.
        direction = torch.sign(rt - self.target).to(device=pipe.p.device, dtype=pipe.p.dtype)
        with torch.no_grad():
            pipe.p.copy_((pipe.p + direction * self.step_size).clamp(min=0))
        return rt

    def state_dict(self) -> dict[str, Any]:
        """The stats gathered since the last adjustment, for an exact resume."""
        sign_sum = 0.0 if self._sign_sum is None else float(self._sign_sum)
        return {"sign_sum": sign_sum, "count": self._count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from state_dict()'s stats."""
        self._count = int(state["count"])
        self._sign_sum = torch.tensor(float(state["sign_sum"]), dtype=torch.float64)


def blit(images: torch.Tensor, g_inv: torch.Tensor) -> torch.Tensor:
    """Move whole pixels: out at (x, y) = images at g_inv @ (x, y, 1), mirrored at the borders.

    images [N, C, H, W]; g_inv [N, 3, 3] maps output to input pixel coordinates with the
    origin at the image centre, and must map pixel centres to pixel centres (flips, 90°
    rotations of square images, whole-pixel translations). Exact, differentiable.
    """
    n, c, h, w = images.shape
    cx, cy = (w - 1) / 2, (h - 1) / 2
    ys, xs = torch.meshgrid(
        torch.arange(h, device=images.device, dtype=torch.float32) - cy,
        torch.arange(w, device=images.device, dtype=torch.float32) - cx,
        indexing="ij",
    )
    coords = torch.stack([xs.flatten(), ys.flatten(), torch.ones_like(xs.flatten())])  # [3, H*W]
    source = g_inv.to(torch.float32) @ coords  # [N, 3, H*W]
    sx = _mirror(torch.round(source[:, 0] + cx).long(), w)  # [N, H*W]
    sy = _mirror(torch.round(source[:, 1] + cy).long(), h)
    index = (sy * w + sx)[:, None, :].expand(n, c, -1)  # [N, C, H*W]
    return images.reshape(n, c, h * w).gather(2, index).reshape(n, c, h, w)


def warp(
    images: torch.Tensor, g_inv: torch.Tensor, *, resample_filter: torch.Tensor | None = None
) -> torch.Tensor:
    """Resample images [N, C, H, W] at g_inv @ (x, y, 1) (centre-origin pixel coordinates).

    g_inv [N, 3, 3] maps output to input pixels. The images are reflect-padded as far as
    the transform reaches, upsampled 2x with `resample_filter` (default sym6), sampled
    bilinearly and downsampled 2x with the same filter, so aliasing stays low. Twice
    differentiable in the images.
    """
    f = upfirdn2d.setup_filter(SYM6) if resample_filter is None else resample_filter
    f = f.to(images.device)
    n, c, h, w = images.shape
    device = images.device
    filter_pad = f.shape[0] // 4  # reach of the filter, in input pixels
    g = g_inv.to(device=device, dtype=torch.float32)

    # Pad by reflection as far as the output's corners reach into the input, plus the filter.
    cx, cy = (w - 1) / 2, (h - 1) / 2
    corners = torch.tensor(
        [[-cx, cx, cx, -cx], [-cy, -cy, cy, cy], [1.0, 1.0, 1.0, 1.0]], device=device
    )  # [3, 4] (x, y, 1) of the corner pixels
    reach = (g @ corners)[:, :2, :].permute(1, 0, 2).flatten(1)  # [2, N*4]
    margin = torch.cat([-reach, reach]).max(dim=1).values  # [x0, y0, x1, y1] from the centre
    margin = margin + torch.tensor([2 * filter_pad - cx, 2 * filter_pad - cy] * 2, device=device)
    margin = torch.minimum(margin.clamp(min=0), torch.tensor([w - 1, h - 1] * 2, device=device))
    mx0, my0, mx1, my1 = (int(m) for m in margin.ceil().tolist())
    images = F.pad(images, [mx0, mx1, my0, my1], mode="reflect")
    g = translate2d_const((mx0 - mx1) / 2, (my0 - my1) / 2, device) @ g

    # Upsample; express the transform in the upsampled image's pixels.
    images = upfirdn2d.upsample2d(images, f, up=2)  # [N, C, 2*H', 2*W']
    g = scale2d_const(2, 2, device) @ g @ scale2d_const(0.5, 0.5, device)
    # sym6 is not symmetric: its delay puts input pixels about half an upsampled pixel
    # early, and centring on that keeps flips and quarter turns closest to exact.
    g = translate2d_const(-0.5, -0.5, device) @ g @ translate2d_const(0.5, 0.5, device)

    # Sample an output with filter_pad spare pixels per side for the downsampling filter.
    out_h, out_w = (h + 2 * filter_pad) * 2, (w + 2 * filter_pad) * 2
    in_h, in_w = images.shape[2], images.shape[3]
    g = scale2d_const(2 / in_w, 2 / in_h, device) @ g @ scale2d_const(out_w / 2, out_h / 2, device)
    grid = F.affine_grid(g[:, :2, :].to(images.dtype), [n, c, out_h, out_w], align_corners=False)
    images = grid_sample(images, grid)  # [N, C, out_h, out_w]

    # Downsample and crop back to [N, C, H, W].
    return upfirdn2d.downsample2d(images, f, down=2, padding=-2 * filter_pad, flip_filter=True)


def filter_images(images: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Filter images [N, C, H, W], each with its own separable kernel [N, taps] (odd taps).

    The borders are reflect-padded, so images need more than taps // 2 pixels a side.
    """
    n, c, h, w = images.shape
    taps = kernels.shape[1]
    pad = taps // 2
    if min(h, w) <= pad:
        raise ValueError(
            f"image-space filtering with {taps} taps needs images of at least {pad + 1} pixels, "
            f"got {w}x{h}"
        )
    weight = kernels.to(images.dtype).repeat_interleave(c, dim=0)  # [N*C, taps]
    flat = images.reshape(1, n * c, h, w)
    flat = F.pad(flat, [pad, pad, pad, pad], mode="reflect")
    flat = F.conv2d(flat, weight[:, None, None, :], groups=n * c)  # along x
    flat = F.conv2d(flat, weight[:, None, :, None], groups=n * c)  # along y
    return flat.reshape(n, c, h, w)


def band_filters(lowpass: tuple[float, ...], *, bands: int) -> np.ndarray:
    """Octave-band filters [bands, taps] (coarse to fine) of an orthogonal wavelet; sum = delta.

    The finest band is the wavelet's highpass power response, each coarser one the same
    band dilated by 2 behind the lowpass of the finer levels; the first is what is left.
    """
    lo = np.asarray(lowpass, dtype=np.float64)
    hi = lo * (-1.0) ** np.arange(lo.size)  # H(-z)
    lo2 = np.convolve(lo, lo[::-1]) / 2  # |H(z)|^2 / 2: sums to 1
    hi2 = np.convolve(hi, hi[::-1]) / 2  # |H(-z)|^2 / 2: lo2 + hi2 = delta
    filters = [np.ones(1)]  # the coarse remainder so far
    for _ in range(bands - 1):
        # One level deeper: what was there moves an octave down, a new fine band comes in.
        filters = [np.convolve(_dilate(f), lo2) for f in filters] + [hi2]
    taps = max(f.size for f in filters)
    out = np.zeros([bands, taps])
    for i, f in enumerate(filters):
        start = (taps - f.size) // 2
        out[i, start : start + f.size] = f
    return out


def _dilate(f: np.ndarray) -> np.ndarray:
    """Insert a zero between taps (the filter an octave lower)."""
    out = np.zeros(2 * f.size - 1)
    out[::2] = f
    return out


def recolor(images: torch.Tensor, color: torch.Tensor) -> torch.Tensor:
    """Apply colour matrices [N, 4, 4] acting on (r, g, b, 1) to images [N, C, H, W], C = 1 or 3."""
    n, c, h, w = images.shape
    color = color.to(device=images.device, dtype=images.dtype)
    flat = images.reshape(n, c, h * w)  # [N, C, H*W]
    if c == 3:
        flat = color[:, :3, :3] @ flat + color[:, :3, 3:]
    elif c == 1:
        grey = color[:, :3, :].mean(dim=1, keepdim=True)  # [N, 1, 4] as seen by a grey pixel
        flat = flat * grey[:, :, :3].sum(dim=2, keepdim=True) + grey[:, :, 3:]
    else:
        raise ValueError(f"colour transforms need 1 or 3 channels, got {c}")
    return flat.reshape(n, c, h, w)


# ----------------------------------------------------------------------------- matrices
# Batched homogeneous matrices from per-image parameters [N]: 3x3 for 2-D, 4x4 for colour.


def _matrices(rows: list[list[torch.Tensor | float]], like: torch.Tensor) -> torch.Tensor:
    """Stack entries (tensors [N] or numbers) into [N, rows, cols]."""
    entries = [
        entry if isinstance(entry, torch.Tensor) else torch.full_like(like, entry)
        for row in rows
        for entry in row
    ]
    return torch.stack(entries, dim=-1).reshape(*like.shape, len(rows), len(rows[0]))


def translate2d(tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    """Translations by (tx, ty) [N] -> [N, 3, 3]."""
    return _matrices([[1, 0, tx], [0, 1, ty], [0, 0, 1]], tx)


def scale2d(sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    """Scales by (sx, sy) [N] -> [N, 3, 3]."""
    return _matrices([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], sx)


def rotate2d(theta: torch.Tensor) -> torch.Tensor:
    """Rotations by theta [N] radians (x towards y) -> [N, 3, 3]."""
    cos, sin = torch.cos(theta), torch.sin(theta)
    return _matrices([[cos, -sin, 0], [sin, cos, 0], [0, 0, 1]], theta)


def rotate2d_quarter(quarter: torch.Tensor) -> torch.Tensor:
    """Rotations by quarter [N] (0..3) quarter turns, with exact 0/±1 entries -> [N, 3, 3]."""
    k = quarter.long() % 4
    cos = torch.tensor([1.0, 0.0, -1.0, 0.0], device=quarter.device)[k]
    sin = torch.tensor([0.0, 1.0, 0.0, -1.0], device=quarter.device)[k]
    return _matrices([[cos, -sin, 0], [sin, cos, 0], [0, 0, 1]], cos)


def translate2d_const(tx: float, ty: float, device: torch.device) -> torch.Tensor:
    """One translation [3, 3] (broadcasts over a batch)."""
    return torch.tensor([[1.0, 0.0, tx], [0.0, 1.0, ty], [0.0, 0.0, 1.0]], device=device)


def scale2d_const(sx: float, sy: float, device: torch.device) -> torch.Tensor:
    """One scale [3, 3] (broadcasts over a batch)."""
    return torch.tensor([[sx, 0.0, 0.0], [0.0, sy, 0.0], [0.0, 0.0, 1.0]], device=device)


def translate3d(tx: torch.Tensor, ty: torch.Tensor, tz: torch.Tensor) -> torch.Tensor:
    """Colour offsets (tx, ty, tz) [N] -> [N, 4, 4]."""
    return _matrices([[1, 0, 0, tx], [0, 1, 0, ty], [0, 0, 1, tz], [0, 0, 0, 1]], tx)


def scale3d(sx: torch.Tensor, sy: torch.Tensor, sz: torch.Tensor) -> torch.Tensor:
    """Colour scales (sx, sy, sz) [N] -> [N, 4, 4]."""
    return _matrices([[sx, 0, 0, 0], [0, sy, 0, 0], [0, 0, sz, 0], [0, 0, 0, 1]], sx)


def rotate3d(axis: tuple[float, float, float], theta: torch.Tensor) -> torch.Tensor:
    """Rotations by theta [N] radians around the unit axis (x, y, z) (Rodrigues) -> [N, 4, 4]."""
    ax, ay, az = axis
    cos, sin = torch.cos(theta), torch.sin(theta)
    cc = 1 - cos
    return _matrices(
        [
            [ax * ax * cc + cos, ax * ay * cc - az * sin, ax * az * cc + ay * sin, 0],
            [ay * ax * cc + az * sin, ay * ay * cc + cos, ay * az * cc - ax * sin, 0],
            [az * ax * cc - ay * sin, az * ay * cc + ax * sin, az * az * cc + cos, 0],
            [0, 0, 0, 1],
        ],
        theta,
    )


def _mirror(index: torch.Tensor, size: int) -> torch.Tensor:
    """Fold pixel indices into 0..size-1 by reflection, edge not repeated (c b | a b c | b a)."""
    if size == 1:
        return torch.zeros_like(index)
    period = 2 * (size - 1)
    index = index.remainder(period)
    return torch.where(index >= size, period - index, index)
