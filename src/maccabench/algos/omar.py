"""OMAR: offline multi-agent RL with actor rectification (Pan et al. 2022; MACCA paper, eq. 8).

The critics are I-CQL's (see icql.py). The actor of agent i minimises

    tau * mean (pi_i(o) - a_hat_i)^2 - (1 - tau) * Q_i^1(o, pi_i(o)) + actor_l2 * pi_i(o)^2

where a_hat_i comes from OMAR's zeroth-order optimiser over actions, run on Q_i^1 (MPE settings):
start from N(mu=omar_mu, sigma=omar_sigma) per action dimension; for omar_iters iterations draw
omar_samples actions (clipped to [-1, 1]), score them with Q_i^1, set mu to the softmax(Q)-weighted
mean of the samples and sigma to their root-mean-square distance from the new mu. a_hat_i is the
best sample of the last iteration if its Q beats Q_i^1(o, pi_i(o)), else pi_i(o) itself.
tau is the paper's "OMAR tau" (Table 4, per quality), distinct from the target-update rate.
With input BatchNorm, each iteration scores its samples in one separate train-mode pass of Q_i^1
(B * omar_samples rows), as OMAR's code does. They run in the update's `precision` (bf16: under
autocast, as the rest of the update); the scores return in fp32.
"""
from __future__ import annotations

from typing import Callable

import torch

from .common import masked_mean
from .icql import ICQL


def softmax_refit(q: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """New (mu, sigma) from samples a [N, B, M, A] with scores q [N, B, M]: mu is the
    softmax(q)-weighted mean, sigma the root-mean-square distance of the samples from mu."""
    w = torch.softmax(q, dim=-1).unsqueeze(-1)
    mu = (w * a).sum(dim=2)
    sigma = (a - mu.unsqueeze(2)).pow(2).mean(dim=2).sqrt()
    return mu, sigma


def better_of(q: torch.Tensor, a: torch.Tensor, q_pi: torch.Tensor, pi: torch.Tensor) -> torch.Tensor:
    """The best sample (q [N, B, M], a [N, B, M, A]) where it beats the policy's action (q_pi
    [N, B], pi [N, B, A]); the policy's action otherwise (ties keep the policy)."""
    q_best, i_best = q.max(dim=-1)
    a_best = torch.gather(a, 2, i_best[..., None, None].expand(-1, -1, 1, a.shape[-1])).squeeze(2)
    return torch.where((q_best > q_pi).unsqueeze(-1), a_best, pi)


@torch.no_grad()
def zeroth_order_actions(q_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], obs: torch.Tensor,
                         pi: torch.Tensor, q_pi: torch.Tensor, mask: torch.Tensor, iters: int, samples: int,
                         mu0: float, sigma0: float, gen: torch.Generator) -> torch.Tensor:
    """OMAR's a_hat [N, B, A] for observations obs [N, B, O]; q_fn(obs [N, B, O], act [N, B, M, A]) -> [N, B, M]
    scores M actions per observation."""
    N, B, A = pi.shape
    mu, sigma = torch.full_like(pi, mu0), torch.full_like(pi, sigma0)
    for _ in range(iters):
        noise = torch.randn(N, B, samples, A, generator=gen, device=pi.device)
        a = (mu.unsqueeze(2) + sigma.unsqueeze(2) * noise).clamp(-1.0, 1.0) * mask[:, None, None]
        q = q_fn(obs, a)
        mu, sigma = softmax_refit(q, a)
    return better_of(q, a, q_pi, pi)


def omar_actor_loss(pi: torch.Tensor, a_hat: torch.Tensor, q_pi: torch.Tensor, mask: torch.Tensor,
                    tau: float, l2: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-agent [N] loss tau * |pi - a_hat|^2 - (1 - tau) * Q(o, pi) + l2 * pi^2, and the mimic term."""
    mimic = masked_mean((pi - a_hat).pow(2), mask)
    return tau * mimic - (1 - tau) * q_pi.mean(dim=-1) + l2 * masked_mean(pi.pow(2), mask), mimic


class OMAR(ICQL):
    """I-CQL with OMAR's actor loss; its config is an `hparams.OMARConfig`."""

    def actor_loss(self, obs: torch.Tensor) -> tuple[torch.Tensor, dict]:
        c = self.cfg
        pi = self.pi(self.actor, obs)
        q_pi = self.q(self.q1, obs, pi)
        a_hat = zeroth_order_actions(self._score_samples, obs, pi.detach(), q_pi.detach(),
                                     self.mask, c.omar_iters, c.omar_samples, c.omar_mu, c.omar_sigma, self.gen)
        loss, mimic = omar_actor_loss(pi, a_hat, q_pi, self.mask, c.omar_tau, c.actor_l2)
        return loss, {"losses/omar_mimic": mimic.detach().mean()}

    def _score_samples(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Q^1 on the zeroth-order samples, [N, B, M], in fp32 (under bf16 autocast the critic's
        output is bf16; the softmax refit and the comparison with Q(o, pi) take fp32 scores)."""
        return self.q_sampled(self.q1, obs, act).float()
