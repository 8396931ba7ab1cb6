"""I-CQL: independent conservative Q-learning with TD3-style actor-critics (MACCA paper, eq. 7).

CQL (Kumar et al. 2020) in the independent-learning form OMAR (Pan et al. 2022) uses on MPE.
Every agent i has a deterministic actor pi_i(o_i) and twin critics Q_i^1, Q_i^2 on its own
observation and action, trained on its own reward r_i = batch["rewards"][:, i] (the team reward
for I-CQL, MACCA's r_hat_i for MACCA-CQL):

  critic, k = 1, 2:  (Q_i^k(o, a) - y_i)^2
                     + alpha * [ logsumexp_j (Q_i^k(o, a_j) - log p(a_j)) - Q_i^k(o, a) ]
      y_i = r_i + gamma * (1 - terminal) * min_k Qbar_i^k(o', pibar_i(o'))      (TD3 twin target)
      a_j ~ U[-1, 1]^{A_i}, j = 1..cql_samples, p(a_j) = 2^-A_i                 (OMAR's sampling)
  actor:   -Q_i^1(o, pi_i(o)) + actor_l2 * mean(pi_i(o)^2)
  targets: soft updates with rate tau after every update; per-agent gradient clipping.

With `input_norm` (OMAR's input BatchNorm) every forward pass of `update` runs in train mode on
its own batch's statistics, as in OMAR's code: the target actor and critics on o', the critics on
the data batch, the CQL samples in a pass of their own (B * cql_samples rows, not concatenated with
the data batch, which would change its statistics), the actor and Q^1(o, pi(o)). `act` (rollouts)
uses the running statistics.

All agents' networks are stacked (`nets.AgentMLP`), so one update runs every agent at once while
each agent keeps its own parameters, losses and clipping: the sum over agents of per-agent
losses gives each agent exactly the gradient of its own loss.
"""
from __future__ import annotations

import contextlib
import copy
import math

import torch

from ..envs.base import EnvSpec
from ..nets import soft_update
from ..hparams import ICQLConfig
from .common import (ActorBackbone, agent_major, clip_grad_norm_per_agent, generator_for, in_precision,
                     masked_mean, stacked_actor, stacked_critic)


# ---- the losses, as functions of tensors (tests check them against hand-computed values) -------

def td_target(rewards: torch.Tensor, terminals: torch.Tensor, gamma: float, next_q: torch.Tensor) -> torch.Tensor:
    """y = r + gamma * (1 - terminal) * Q'(o', a'). rewards, next_q [N, B]; terminals [B]."""
    return rewards + gamma * (1.0 - terminals) * next_q


def cql_penalty(q_sampled: torch.Tensor, q_data: torch.Tensor, log_density: torch.Tensor) -> torch.Tensor:
    """Per-agent CQL term: mean over the batch of logsumexp_j (Q(o, a_j) - log p(a_j)) - Q(o, a).
    q_sampled [N, B, M] at the sampled actions, q_data [N, B] at the dataset actions,
    log_density [N] of the sampling distribution -> [N]."""
    return (torch.logsumexp(q_sampled - log_density[:, None, None], dim=-1) - q_data).mean(dim=-1)


def deterministic_actor_loss(q_pi: torch.Tensor, pi: torch.Tensor, mask: torch.Tensor, l2: float) -> torch.Tensor:
    """-Q(o, pi(o)) + l2 * pi^2, each agent's mean over the batch -> [N]."""
    return -q_pi.mean(dim=-1) + l2 * masked_mean(pi.pow(2), mask)


@contextlib.contextmanager
def no_param_grad(*modules):
    """Backpropagate through `modules` to their inputs only (actor losses through the critic)."""
    params = [p for m in modules for p in m.parameters()]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


class ICQL(ActorBackbone):
    def __init__(self, spec: EnvSpec, cfg: ICQLConfig, device: torch.device, seed: int):
        self.cfg = cfg
        self.spec, self.device = spec, torch.device(device)
        self.n, O, A = spec.n_agents, spec.obs_dim, spec.action_dim
        self.mask = torch.as_tensor(spec.action_mask(), device=self.device)           # [N, A]
        self.log_density = -self.mask.sum(dim=1) * math.log(2.0)                     # U[-1,1]^{A_i}
        with torch.random.fork_rng(devices=[]):     # seeded initialisation, global RNG untouched
            torch.manual_seed(seed)
            self.actor = stacked_actor(self.n, O, A, cfg)
            self.q1 = stacked_critic(self.n, O + A, cfg)
            self.q2 = stacked_critic(self.n, O + A, cfg)
        for m in (self.actor, self.q1, self.q2):
            m.to(self.device)
        self.actor_t, self.q1_t, self.q2_t = (copy.deepcopy(m) for m in (self.actor, self.q1, self.q2))
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=self.cfg.actor_lr)
        self.critic_opt = torch.optim.Adam([*self.q1.parameters(), *self.q2.parameters()], lr=self.cfg.critic_lr)
        self.gen = generator_for(self.device, seed)   # the update's own randomness (sampled actions)
        self.updates = 0

    # ---- one update ----------------------------------------------------------------------------------
    @in_precision
    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        c = self.cfg
        obs, act, nobs = (agent_major(batch[k]) for k in ("obs", "actions", "next_obs"))
        with torch.no_grad():
            na = self.pi(self.actor_t, nobs)
            next_q = torch.min(self.q(self.q1_t, nobs, na), self.q(self.q2_t, nobs, na))
            y = td_target(batch["rewards"].T, batch["terminals"], c.gamma, next_q)
        q1, q2 = self.q(self.q1, obs, act), self.q(self.q2, obs, act)
        td = (q1 - y).pow(2).mean(dim=-1) + (q2 - y).pow(2).mean(dim=-1)                # [N]
        cql = self.cql_terms(obs, q1, q2) if c.cql_alpha > 0 else torch.zeros_like(td)
        critic_loss = td + c.cql_alpha * cql
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.sum().backward()
        clip_grad_norm_per_agent([*self.q1.parameters(), *self.q2.parameters()], self.n, c.grad_clip)
        self.critic_opt.step()

        with no_param_grad(self.q1):
            actor_loss, extra = self.actor_loss(obs)
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.sum().backward()
        clip_grad_norm_per_agent(list(self.actor.parameters()), self.n, c.grad_clip)
        self.actor_opt.step()

        for t, s in ((self.actor_t, self.actor), (self.q1_t, self.q1), (self.q2_t, self.q2)):
            soft_update(t, s, c.tau)
        self.updates += 1
        return {"losses/critic": critic_loss.detach().mean(), "losses/td": td.detach().mean(),
                "losses/cql": cql.detach().mean(), "losses/actor": actor_loss.detach().mean(),
                "losses/q_data": q1.detach().mean(), **extra}

    def cql_terms(self, obs: torch.Tensor, q1: torch.Tensor, q2: torch.Tensor) -> torch.Tensor:
        """CQL penalty of both twin critics, per agent [N]."""
        N, B, _ = obs.shape
        M, A = self.cfg.cql_samples, self.spec.action_dim
        rand = (torch.rand(N, B, M, A, generator=self.gen, device=self.device) * 2 - 1) * self.mask[:, None, None]
        qs1, qs2 = self.q_sampled(self.q1, obs, rand), self.q_sampled(self.q2, obs, rand)
        return cql_penalty(qs1, q1, self.log_density) + cql_penalty(qs2, q2, self.log_density)

    def actor_loss(self, obs: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Per-agent actor losses [N] and extra metrics."""
        pi = self.pi(self.actor, obs)
        return deterministic_actor_loss(self.q(self.q1, obs, pi), pi, self.mask, self.cfg.actor_l2), {}

    def _modules(self) -> dict:
        return {"actor": self.actor, "q1": self.q1, "q2": self.q2, "actor_t": self.actor_t,
                "q1_t": self.q1_t, "q2_t": self.q2_t, "actor_opt": self.actor_opt, "critic_opt": self.critic_opt}
