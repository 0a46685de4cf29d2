"""Peak memory of one training minibatch on the CPU: lyriscope vs NVlabs stylegan2-ada-pytorch.

    python scripts/training_memory.py --nvlabs /path/to/stylegan2-ada-pytorch

Runs every phase once (Gmain, Greg, Dmain, Dreg, with their Adam steps) at the same small
configuration in fp32 and measures the most bytes held by the C allocator after any op
(glibc's mallinfo2, sampled after every aten op through a dispatch mode), above what was
held before the minibatch. Each measurement runs in its own process:
  nvlabs        NVlabs' networks and loss (their ops fall back to PyTorch on a CPU)
  ref           ours, PyTorch ops
  fused         ours with bias_act on its fused route, through a vectorised stand-in for
                the kernel (the real one needs CUDA), upfirdn2d on PyTorch: what the
                CUDA route's bias_act keeps for backward
  fused-keep-x  the same, keeping bias_act's input for backward (lyriscope before issue 18)
Both sides run num_fp16_res=0: NVlabs' blocks would run float16 on a CPU as well (ours
only on CUDA), which halves their activations and is no like-for-like comparison.
NVlabs' code is imported from the given checkout, never copied here. Linux/glibc only.
"""

from __future__ import annotations

import argparse
import ctypes
import subprocess
import sys
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

RES, BATCH, CHANNEL_BASE, CHANNEL_MAX, LATENT = 64, 8, 4096, 128, 128
KINDS = ("nvlabs", "ref", "fused", "fused-keep-x")


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()
    ]


class PeakAllocated(TorchDispatchMode):
    """The most bytes malloc holds after any aten op inside the block, above its start."""

    def __init__(self) -> None:
        super().__init__()
        self._libc = ctypes.CDLL("libc.so.6")
        self._libc.mallinfo2.restype = _MallInfo2
        self.start = self.peak = 0

    def held(self) -> int:
        info = self._libc.mallinfo2()
        return info.uordblks + info.hblkhd  # in use on the heaps + mmapped blocks

    def __enter__(self) -> PeakAllocated:
        self.start = self.peak = self.held()
        return super().__enter__()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN206
        out = func(*args, **(kwargs or {}))
        self.peak = max(self.peak, self.held())
        return out

    @property
    def mib(self) -> float:
        return (self.peak - self.start) / 2**20


def _nvlabs_step(checkout: Path):  # noqa: ANN202
    sys.path.insert(0, str(checkout))
    from training.loss import StyleGAN2Loss  # NVlabs'
    from training.networks import Discriminator, Generator  # NVlabs'

    G = Generator(
        z_dim=LATENT, c_dim=0, w_dim=LATENT, img_resolution=RES, img_channels=3,
        mapping_kwargs=dict(num_layers=2),
        synthesis_kwargs=dict(channel_base=CHANNEL_BASE, channel_max=CHANNEL_MAX,
                              num_fp16_res=0, conv_clamp=256),
    ).train().requires_grad_(False)  # fmt: skip
    D = Discriminator(
        c_dim=0, img_resolution=RES, img_channels=3, architecture="resnet",
        channel_base=CHANNEL_BASE, channel_max=CHANNEL_MAX, num_fp16_res=0, conv_clamp=256,
        epilogue_kwargs=dict(mbstd_group_size=4),
    ).train().requires_grad_(False)  # fmt: skip
    loss = StyleGAN2Loss(torch.device("cpu"), G.mapping, G.synthesis, D, r1_gamma=1.0)
    phases = []
    for name, module, interval in (("G", G, 4), ("D", D, 16)):
        ratio = interval / (interval + 1)
        opt = torch.optim.Adam(
            module.parameters(), lr=0.0025 * ratio, betas=(0.0, 0.99**ratio), eps=1e-8
        )
        phases += [(f"{name}main", module, opt, 1), (f"{name}reg", module, opt, interval)]
    real, c = _reals(), torch.zeros([BATCH, 0])

    def step() -> None:
        for name, module, opt, interval in phases:
            opt.zero_grad(set_to_none=True)
            module.requires_grad_(True)
            z = torch.randn([BATCH, LATENT])
            loss.accumulate_gradients(name, real, c, z, c, sync=True, gain=interval)
            module.requires_grad_(False)
            for p in module.parameters():
                if p.grad is not None:
                    torch.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)
            opt.step()

    return step


def _our_step(kind: str):  # noqa: ANN202
    from lyriscope.trainers.ops import bias_act, custom_ops
    from lyriscope.trainers.train_config import TrainConfig
    from lyriscope.trainers.training_loop import RunPaths, Trainer

    if kind != "ref":
        custom_ops.wants_fused = lambda impl, x: impl == "cuda"
        bias_act.fused_plugin = _StandInBiasAct
        if kind == "fused-keep-x":
            bias_act._KernelParams.slope_from_output = property(lambda self: False)
    config = TrainConfig(
        resolution=RES, batch=BATCH, mbstd_group=4, z_dim=LATENT, w_dim=LATENT,
        channel_base=CHANNEL_BASE, channel_max=CHANNEL_MAX, num_fp16_res=0, r1_gamma=1.0,
        aug="none", metrics=(), workers=0,
    )  # fmt: skip
    run = Path("/tmp/lyriscope-training-memory")
    trainer = Trainer(
        config, paths=RunPaths(run, run / "m.safetensors"), device="cpu",
        ops="ref" if kind == "ref" else "cuda",
    )  # fmt: skip
    reals = ((_reals() + 1) * 127.5).round().to(torch.uint8)

    def step() -> None:
        trainer.batch_idx = 0  # every phase runs
        trainer.step(reals, torch.zeros([BATCH, 0]))

    return step


class _StandInBiasAct:
    """The bias_act kernel's modes for linear and lrelu, vectorised in PyTorch."""

    def bias_act(self, x, b, grad, dim, act, alpha, gain, clamp, mode):  # noqa: ANN001, ANN201
        if act not in (0, 2):
            raise ValueError(f"the stand-in knows linear and lrelu, not code {act}")
        alpha = alpha if act == 2 else 1.0
        if mode == 3:  # x holds the output
            slope = torch.where(x > 0, 1.0, alpha) * gain
            if clamp >= 0:
                slope = torch.where(x.abs() >= clamp, 0.0, slope)
            return grad * slope
        shape = [-1 if i == dim else 1 for i in range(x.ndim)]
        s = x + b.reshape(shape) if b.numel() else x
        y = torch.where(s > 0, s, s * alpha) * gain
        if mode == 0:
            return y.clamp(-clamp, clamp) if clamp >= 0 else y
        if mode == 2:
            return torch.zeros_like(x)
        slope = torch.where(s > 0, 1.0, alpha) * gain
        if clamp >= 0:
            slope = torch.where(y.abs() > clamp, 0.0, slope)
        return grad * slope


def _reals() -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.rand([BATCH, 3, RES, RES], generator=generator) * 2 - 1  # [N, 3, R, R]


def measure(kind: str, nvlabs: Path | None) -> float:
    """MiB above the start at the peak of one minibatch (after one to warm up)."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    step = _nvlabs_step(nvlabs) if kind == "nvlabs" else _our_step(kind)
    step()  # Adam's state exists, the allocator is warm
    with PeakAllocated() as peak:
        step()
    return peak.mib


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nvlabs", type=Path, help="a stylegan2-ada-pytorch checkout")
    parser.add_argument("--kind", choices=KINDS, help=argparse.SUPPRESS)  # one, in a child
    args = parser.parse_args()
    if args.kind is not None:
        print(f"{measure(args.kind, args.nvlabs):.1f}")
        return
    print(f"one minibatch, all phases, {RES}², batch {BATCH}, channel_base {CHANNEL_BASE}, "
          f"max {CHANNEL_MAX}, fp32, CPU: peak MiB held above the start")  # fmt: skip
    for kind in KINDS:
        if kind == "nvlabs" and args.nvlabs is None:
            print(f"  {kind:13s} (give --nvlabs PATH)")
            continue
        extra = ["--nvlabs", str(args.nvlabs)] if args.nvlabs is not None else []
        out = subprocess.run(
            [sys.executable, __file__, "--kind", kind, *extra],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        print(f"  {kind:13s} {out.stdout.strip()}")


if __name__ == "__main__":
    main()
