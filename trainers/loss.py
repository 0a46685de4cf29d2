"""StyleGAN2 losses as published: non-saturating logistic loss, lazy R1 and path-length regularization.

One object holds the networks and the running path-length mean; `accumulate_gradients`
runs one phase ("Gmain", "Greg", "Gboth", "Dmain", "Dreg", "Dboth") on one minibatch and
calls backward(); the training loop owns the optimizers. `gain` is the phase's interval,
which is how lazy regularization keeps the penalty's overall weight.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

PHASES = ("Gmain", "Greg", "Gboth", "Dmain", "Dreg", "Dboth")


class StyleGAN2Loss:
    """The published StyleGAN2Loss (stylegan2-ada-pytorch training/loss.py), minus its sync contexts."""

    def __init__(
        self,
        G: torch.nn.Module,
        D: torch.nn.Module,
        *,
        augment_pipe: torch.nn.Module | None = None,  # applied to every image D sees
        r1_gamma: float = 10.0,  # R1 weight (0: no R1)
        style_mixing: float = 0.9,  # probability of mixing two latents
        pl_weight: float = 2.0,  # path-length regularization weight (0: off)
        pl_batch_shrink: int = 2,  # path-length batch = batch / this
        pl_decay: float = 0.01,  # decay of the running mean path length
        average: Callable[[torch.Tensor], torch.Tensor] | None = None,  # mean over processes
    ) -> None:
        self.G = G
        self.D = D
        self.augment_pipe = augment_pipe
        self.r1_gamma = r1_gamma
        self.style_mixing = style_mixing
        self.pl_weight = pl_weight
        self.pl_batch_shrink = pl_batch_shrink
        self.pl_decay = pl_decay
        self.average = average
        device = next(G.parameters()).device
        self.pl_mean = torch.zeros([], device=device)

    def run_G(
        self, z: torch.Tensor, c: torch.Tensor, *, update_emas: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """z [N, z_dim] -> (img [N, C, R, R], ws [N, num_ws, w_dim]), with style mixing."""
        ws = self.G.mapping(z, c, update_emas=update_emas)  # [N, num_ws, w_dim]
        if update_emas and self.average is not None:
            # Every process saw its own shard: w_avg's update is linear, so averaging it
            # over processes gives the update of the whole batch.
            w_avg = self.G.mapping.w_avg
            w_avg.copy_(self.average(w_avg))
        if self.style_mixing > 0:
            num_ws = ws.shape[1]
            cutoff = torch.empty([], dtype=torch.int64, device=ws.device).random_(1, num_ws)
            mix = torch.rand([], device=ws.device) < self.style_mixing
            cutoff = torch.where(mix, cutoff, torch.full_like(cutoff, num_ws))
            mixed = self.G.mapping(torch.randn_like(z), c, update_emas=False)
            keep = torch.arange(num_ws, device=ws.device)[None, :, None] < cutoff
            ws = torch.where(keep, ws, mixed)
        img = self.G.synthesis(ws)
        return img, ws

    def run_D(self, img: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """img [N, C, R, R] in [-1, 1] -> logits [N, 1], through the augmentation pipe."""
        if self.augment_pipe is not None:
            img = self.augment_pipe(img)
        return self.D(img, c)

    def accumulate_gradients(
        self,
        phase: str,
        real_img: torch.Tensor,  # [N, C, R, R] float in [-1, 1]
        real_c: torch.Tensor,  # [N, c_dim]
        gen_z: torch.Tensor,  # [N, z_dim]
        gen_c: torch.Tensor,  # [N, c_dim]
        gain: float,  # the phase's interval
    ) -> dict[str, torch.Tensor]:
        """Backward the losses of `phase`; returns detached per-sample terms for stats (and ADA)."""
        if phase not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")
        do_Gmain = phase in ("Gmain", "Gboth")
        do_Dmain = phase in ("Dmain", "Dboth")
        do_Gpl = phase in ("Greg", "Gboth") and self.pl_weight != 0
        do_Dr1 = phase in ("Dreg", "Dboth") and self.r1_gamma != 0
        stats: dict[str, torch.Tensor] = {}

        if do_Gmain:
            gen_img, _ = self.run_G(gen_z, gen_c, update_emas=True)
            gen_logits = self.run_D(gen_img, gen_c)
            loss_Gmain = F.softplus(-gen_logits)  # -log(sigmoid(gen_logits))
            loss_Gmain.mean().mul(gain).backward()
            stats["loss_G"] = loss_Gmain.detach()

        if do_Gpl:
            n = max(gen_z.shape[0] // self.pl_batch_shrink, 1)
            gen_img, gen_ws = self.run_G(gen_z[:n], gen_c[:n])
            pl_noise = torch.randn_like(gen_img) / math.sqrt(gen_img.shape[2] * gen_img.shape[3])
            (pl_grads,) = torch.autograd.grad(
                outputs=[(gen_img * pl_noise).sum()],
                inputs=[gen_ws],
                create_graph=True,
                only_inputs=True,
            )
            pl_lengths = pl_grads.square().sum(2).mean(1).sqrt()  # [n]
            pl_mean = self.pl_mean.lerp(pl_lengths.mean(), self.pl_decay)
            self.pl_mean.copy_(pl_mean.detach())
            pl_penalty = (pl_lengths - pl_mean).square()
            loss_Gpl = pl_penalty * self.pl_weight
            # The zero term keeps every synthesis parameter in the graph.
            (gen_img[:, 0, 0, 0] * 0 + loss_Gpl).mean().mul(gain).backward()
            stats["loss_pl"] = loss_Gpl.detach()

        if do_Dmain:
            with torch.no_grad():
                gen_img, _ = self.run_G(gen_z, gen_c)
            gen_logits = self.run_D(gen_img, gen_c)
            loss_Dgen = F.softplus(gen_logits)  # -log(1 - sigmoid(gen_logits))
            loss_Dgen.mean().mul(gain).backward()
            stats["loss_D_gen"] = loss_Dgen.detach()

        if do_Dmain or do_Dr1:
            real_img_tmp = real_img.detach().requires_grad_(do_Dr1)
            real_logits = self.run_D(real_img_tmp, real_c)
            loss_Dreal = torch.zeros_like(real_logits)
            if do_Dmain:
                loss_Dreal = F.softplus(-real_logits)  # -log(sigmoid(real_logits))
                stats["loss_D_real"] = loss_Dreal.detach()
                stats["real_logits"] = real_logits.detach()
            loss_Dr1 = torch.zeros_like(real_logits)
            if do_Dr1:
                (r1_grads,) = torch.autograd.grad(
                    outputs=[real_logits.sum()],
                    inputs=[real_img_tmp],
                    create_graph=True,
                    only_inputs=True,
                )
                r1_penalty = r1_grads.square().sum([1, 2, 3])  # [N]
                loss_Dr1 = (r1_penalty * (self.r1_gamma / 2))[:, None]
                stats["loss_r1"] = loss_Dr1.detach()
            (real_logits * 0 + loss_Dreal + loss_Dr1).mean().mul(gain).backward()
        return stats
