"""I-CQL for discrete actions (SMAX): independent conservative Q-learning, each agent's critic
over its own actions (CQL(H), Kumar et al. 2020, in the independent form of icql.py).

Every agent i has twin critics Q_i^1, Q_i^2 (o_i) -> one value per action (padded to the widest
agent; padded actions are never available), trained on its own reward r_i = batch["rewards"][:, i]:

  critic, k = 1, 2:  (Q_i^k(o, a) - y_i)^2 + alpha * [ logsumexp_{b in avail(o)} Q_i^k(o, b) - Q_i^k(o, a) ]
      y_i = r_i + gamma * (1 - terminal) * max_{b in avail(o')} min_k Qbar_i^k(o', b)
  acting: argmax_{b in avail(o)} Q_i^1(o, b)
  targets: soft updates with rate tau after every update; per-agent gradient clipping.

The log-sum-exp is exact over the available actions (the continuous version samples actions),
the target is the twin minimum at the target networks' argmax over the next step's available
actions (the discrete counterpart of TD3's target actor). Every max, argmax and log-sum-exp is
restricted to the available actions (algos.common: masked_*). The continuous-only options
(`cql_samples`, `actor_l2`) are unused; docs/discrete.md lists every difference.
"""
from __future__ import annotations

import copy

import torch

from ..envs.base import EnvSpec
from ..hparams import ICQLConfig
from ..nets import soft_update
from .common import (DiscreteBackbone, clip_grad_norm_per_agent, in_precision, masked_logsumexp, masked_max,
                     stacked_policy, stacked_q, take)
from .icql import td_target


# ---- the losses, as functions of tensors (tests check them against hand-computed values) -------

def twin_max_target(rewards: torch.Tensor, terminals: torch.Tensor, gamma: float, next_q1: torch.Tensor,
                    next_q2: torch.Tensor, next_avail: torch.Tensor) -> torch.Tensor:
    """y = r + gamma (1 - terminal) max_{b available at o'} min(Q'^1, Q'^2)(o', b).
    rewards [N, B]; terminals [B]; next_q1, next_q2 [N, B, A]; next_avail bool [N, B, A] -> [N, B]."""
    return td_target(rewards, terminals, gamma, masked_max(torch.min(next_q1, next_q2), next_avail))


def discrete_cql_penalty(q: torch.Tensor, avail: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """Per-agent CQL term: mean over the batch of logsumexp over the available actions of Q(o, .)
    minus Q(o, a) at the dataset action. q [N, B, A]; avail [N, B, A]; actions int [N, B] -> [N]."""
    return (masked_logsumexp(q, avail) - take(q, actions)).mean(dim=-1)


class DiscreteICQL(DiscreteBackbone):
    has_actor = False   # DiscreteOMAR: a categorical policy beside the critics

    def __init__(self, spec: EnvSpec, cfg: ICQLConfig, device: torch.device, seed: int):
        self.cfg, self.spec, self.device = cfg, spec, torch.device(device)
        self.n, O, A = spec.n_agents, spec.obs_dim, spec.action_dim
        self.mask = torch.as_tensor(spec.action_mask(), device=self.device).bool()      # [N, A]
        with torch.random.fork_rng(devices=[]):     # seeded initialisation, global RNG untouched
            torch.manual_seed(seed)
            self.q1, self.q2 = stacked_q(self.n, O, A, cfg), stacked_q(self.n, O, A, cfg)
            self.actor = stacked_policy(self.n, O, A, cfg) if self.has_actor else None
        for m in (self.q1, self.q2, self.actor):
            if m is not None:
                m.to(self.device)
        self.q1_t, self.q2_t = copy.deepcopy(self.q1), copy.deepcopy(self.q2)
        self.critic_opt = torch.optim.Adam([*self.q1.parameters(), *self.q2.parameters()], lr=cfg.critic_lr)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr) if self.has_actor else None
        self.acting = self.actor if self.has_actor else self.q1
        self.updates = 0

    @in_precision
    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        c = self.cfg
        obs, act, nobs, avail, navail = self.unpack(batch)
        with torch.no_grad():
            y = twin_max_target(batch["rewards"].T, batch["terminals"], c.gamma, self.q1_t(nobs), self.q2_t(nobs),
                                navail)
        q1_all, q2_all = self.q1(obs), self.q2(obs)                                       # [N, B, A]
        q1, q2 = take(q1_all, act), take(q2_all, act)
        td = (q1 - y).pow(2).mean(dim=-1) + (q2 - y).pow(2).mean(dim=-1)                 # [N]
        cql = discrete_cql_penalty(q1_all, avail, act) + discrete_cql_penalty(q2_all, avail, act)
        critic_loss = td + c.cql_alpha * cql
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.sum().backward()
        clip_grad_norm_per_agent([*self.q1.parameters(), *self.q2.parameters()], self.n, c.grad_clip)
        self.critic_opt.step()
        stats = self.actor_step(obs, avail)

        for t, s in ((self.q1_t, self.q1), (self.q2_t, self.q2)):
            soft_update(t, s, c.tau)
        self.updates += 1
        return {"losses/critic": critic_loss.detach().mean(), "losses/td": td.detach().mean(),
                "losses/cql": cql.detach().mean(), "losses/q_data": q1.detach().mean(), **stats}

    def actor_step(self, obs: torch.Tensor, avail: torch.Tensor) -> dict:
        """I-CQL acts greedily on Q^1: no actor to train."""
        return {}

    def _modules(self) -> dict:
        mods = {"q1": self.q1, "q2": self.q2, "q1_t": self.q1_t, "q2_t": self.q2_t, "critic_opt": self.critic_opt}
        if self.has_actor:
            mods.update(actor=self.actor, actor_opt=self.actor_opt)
        return mods
