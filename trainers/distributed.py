"""Several processes, one model: torchrun environment, gradient averaging, launching torchrun.

Each process trains on its shard of the same global minibatch; after every phase the
gradients are averaged with one all_reduce of the flattened gradients (as the published
training loop does), so every process holds the same weights. NCCL on GPUs, gloo on CPU.

Example:
    torchrun --nproc_per_node 4 -m lyriscope.trainers.commands.train sets/song --line 3
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from lyriscope.errors import DeviceError
from lyriscope.termination import Terminated
from lyriscope.trainers.torchrun import torchrun_command


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: rank among world_size, and its GPU index on the machine."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """The process that writes files and shows progress."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        """More than one process takes part."""
        return self.world_size > 1


def env_dist_info() -> DistInfo:
    """DistInfo from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK); one process without it."""
    try:
        return DistInfo(
            rank=int(os.environ.get("RANK", "0")),
            world_size=int(os.environ.get("WORLD_SIZE", "1")),
            local_rank=int(os.environ.get("LOCAL_RANK", "0")),
        )
    except ValueError as exc:
        raise DeviceError(
            f"torchrun environment is malformed ({exc}); RANK, WORLD_SIZE and "
            f"LOCAL_RANK must be integers"
        ) from None


def init_process_group(info: DistInfo, *, device: torch.device) -> None:
    """Join the process group when several processes run (NCCL on CUDA, gloo otherwise).

    On CUDA, host tensors (the per-minibatch stop flag of broadcast_flag) go over gloo:
    NCCL takes only GPU tensors, and a GPU flag would make every minibatch wait for the GPU.
    """
    if not info.enabled or torch.distributed.is_initialized():
        return
    backend = "cuda:nccl,cpu:gloo" if device.type == "cuda" else "gloo"
    if "MASTER_ADDR" not in os.environ or "MASTER_PORT" not in os.environ:
        raise DeviceError(
            "WORLD_SIZE > 1 but MASTER_ADDR/MASTER_PORT are not set; start the "
            "processes with torchrun (or `lyriscope train --gpus K`)"
        )
    torch.distributed.init_process_group(
        backend=backend, init_method="env://", rank=info.rank, world_size=info.world_size
    )


def shutdown() -> None:
    """Leave the process group, if one was joined."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def average_gradients(params: Iterable[torch.nn.Parameter], info: DistInfo) -> None:
    """Replace each parameter's gradient by its mean over processes (one flat all_reduce)."""
    if not info.enabled:
        return
    params = [p for p in params if p.grad is not None]
    if not params:
        return
    flat = torch.cat([p.grad.flatten() for p in params])
    torch.distributed.all_reduce(flat, op=torch.distributed.ReduceOp.SUM)
    flat /= info.world_size
    offset = 0
    for p in params:
        n = p.numel()
        p.grad.copy_(flat[offset : offset + n].view_as(p.grad))
        offset += n


def average_tensor(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """The mean of `value` over processes (a copy; `value` itself unchanged)."""
    if not info.enabled:
        return value
    total = value.detach().clone()
    torch.distributed.all_reduce(total, op=torch.distributed.ReduceOp.SUM)
    return total / info.world_size


def gather_tensor(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Every process's `value` concatenated along dim 0, in rank order (same shape everywhere)."""
    if not info.enabled:
        return value
    parts = [torch.empty_like(value) for _ in range(info.world_size)]
    torch.distributed.all_gather(parts, value.detach().contiguous())
    return torch.cat(parts)


def broadcast_module(module: torch.nn.Module, info: DistInfo) -> None:
    """Copy rank 0's parameters and buffers to every process."""
    if not info.enabled:
        return
    for tensor in [*module.parameters(), *module.buffers()]:
        torch.distributed.broadcast(tensor.data, src=0)


def gather_objects(value: Any, info: DistInfo) -> list[Any]:
    """Every process's `value`, in rank order (a list of one without a process group)."""
    if not info.enabled:
        return [value]
    gathered: list[Any] = [None] * info.world_size
    torch.distributed.all_gather_object(gathered, value)
    return gathered


def broadcast_flag(flag: bool, info: DistInfo) -> bool:
    """True on every process when any process says True (e.g. a signal arrived)."""
    if not info.enabled:
        return flag
    value = torch.tensor([1.0 if flag else 0.0])  # a host tensor: gloo, no GPU sync
    torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MAX)
    return bool(value.item() > 0)


def barrier(info: DistInfo) -> None:
    """Wait for every process."""
    if info.enabled:
        torch.distributed.barrier()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def launch_torchrun(module_args: Sequence[str], *, nproc: int) -> int:
    """Run `lyriscope train` under torchrun with `nproc` processes on this machine; its exit code."""
    if nproc > 1 and torch.cuda.is_available() and torch.cuda.device_count() < nproc:
        raise DeviceError(
            f"--gpus {nproc}: this machine has {torch.cuda.device_count()} CUDA device(s)"
        )
    with subprocess.Popen(torchrun_command(module_args, nproc=nproc)) as torchrun:
        try:
            return torchrun.wait()
        except KeyboardInterrupt as stop:
            # Ctrl-C reaches every process of the terminal's group, but a SIGTERM (which the
            # CLI raises as Terminated) only this one: pass it on so that torchrun stops its
            # workers and they save a checkpoint, instead of leaving them running.
            torchrun.send_signal(signal.SIGTERM if isinstance(stop, Terminated) else signal.SIGINT)
            torchrun.wait()
            raise
