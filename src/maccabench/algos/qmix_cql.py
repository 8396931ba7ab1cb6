"""QMIX-CQL: QMIX (Rashid et al. 2018, "QMIX: Monotonic Value Function Factorisation for Deep
Multi-Agent Reinforcement Learning") with a conservative term on the mixed value, the offline
baseline CFCQL (Shao et al. 2023, "Counterfactual Conservative Q Learning for Offline
Multi-Agent Reinforcement Learning") calls MACQL and the MACCA paper's Table 5 calls QMIX-CQL.

Per-agent Q_i(o_i, .) over discrete actions, mixed by QMIX's monotone hypernetwork mixer from
the joint state (`credit.QMixer`), trained on the team reward R:

  TD:    1/2 (Q_tot(s, a) - y)^2,  y = R + gamma (1 - terminal) Qbar_tot(s', a'),
         Qbar_tot = the target mixer over the target agents' Qbar_i(o'_i, a'_i), a'_i each agent's
         greedy available action (double_q: greedy by the online Q_i, as CFCQL's code)
  CQL:   cql_alpha * [ logsumexp_{j=1..M} Q_tot(s, a^j) - Q_tot(s, a) ],
         a^j joint actions with each a^j_i uniform over agent i's available actions (M = cql_samples)

The 1/2 and the log-sum-exp without an importance correction are CFCQL's (its `raw_cql`), so its
weight 50 means the same here; the correction for uniform sampling, sum_i log |avail_i| - log M,
is constant per state and would change the loss's value, not its gradient. Agents and mixer share
one Adam optimiser (`critic_lr`); targets follow by soft updates (`tau`).
"""
from __future__ import annotations

import copy

import torch

from ..envs.base import EnvSpec
from ..hparams import QMIXCQLConfig
from ..nets import soft_update
from .common import (DiscreteBackbone, agent_major, stacked_q, clip_grad_norm_per_agent, generator_for, in_precision,
                     masked_argmax)
from .credit import QMixer, batch_tensors, sample_available


# ---- the losses, as functions of tensors ---------------------------------------------------------

def chosen(q: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """Q at the given actions: q [N, B, A], actions int [N, B] (or [N, B, M]) -> [N, B] ([N, B, M])."""
    if actions.dim() == 2:
        return q.gather(-1, actions[..., None]).squeeze(-1)
    return q.gather(-1, actions)


def qmix_cql_penalty(q_tot_sampled: torch.Tensor, q_tot_data: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of logsumexp_j Q_tot(s, a^j) - Q_tot(s, a): [B, M], [B] -> []."""
    return (torch.logsumexp(q_tot_sampled, dim=-1) - q_tot_data).mean()


def next_values(q_next: torch.Tensor, q_next_target: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
    """Each agent's target value at its greedy available next action: argmax of `q_next` (the online
    Q for double Q-learning, else the target's), valued by the target. [N, B, A] -> [N, B]."""
    return chosen(q_next_target, masked_argmax(q_next, avail))


class QMIXCQL(DiscreteBackbone):
    def __init__(self, spec: EnvSpec, cfg: QMIXCQLConfig, device: torch.device, seed: int):
        self.spec, self.cfg, self.device = spec, cfg, torch.device(device)
        self.n, O, A = spec.n_agents, spec.obs_dim, spec.action_dim
        self.mask = torch.as_tensor(spec.action_mask(), device=self.device).bool()      # [N, A] real actions
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.q = stacked_q(self.n, O, A, cfg)
            self.acting = self.q   # DiscreteBackbone.act: greedy over its scores
            self.mixer = QMixer(spec.state_dim, self.n, cfg.mixer_embed, cfg.hypernet_embed)
        self.q.to(self.device), self.mixer.to(self.device)
        self.q_t, self.mixer_t = copy.deepcopy(self.q), copy.deepcopy(self.mixer)
        self.opt = torch.optim.Adam([*self.q.parameters(), *self.mixer.parameters()], lr=cfg.critic_lr)
        self.gen = generator_for(self.device, seed)
        self.updates = 0

    @in_precision
    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        c = self.cfg
        actions, avail, next_avail, team_reward = batch_tensors(batch)
        obs, nobs = agent_major(batch["obs"]), agent_major(batch["next_obs"])
        act, avail, next_avail = actions.T, agent_major(avail), agent_major(next_avail)
        with torch.no_grad():
            q_next_t = self.q_t(nobs)
            q_next = self.q(nobs) if c.double_q else q_next_t
            target_tot = self.mixer_t(next_values(q_next, q_next_t, next_avail).T, batch["next_state"])
            y = team_reward + c.gamma * (1.0 - batch["terminals"]) * target_tot
        q = self.q(obs)                                                                   # [N, B, A]
        q_tot = self.mixer(chosen(q, act).T, batch["state"])                             # [B]
        td = 0.5 * (q_tot - y).pow(2).mean()
        if c.cql_alpha > 0:
            samples = sample_available(avail, c.cql_samples, self.gen)                    # [N, B, M]
            q_tot_sampled = self.mixer(chosen(q, samples).permute(1, 2, 0), batch["state"])   # [B, M]
            cql = qmix_cql_penalty(q_tot_sampled, q_tot)
        else:
            cql = torch.zeros_like(td)
        loss = td + c.cql_alpha * cql
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        clip_grad_norm_per_agent(list(self.q.parameters()), self.n, c.grad_clip)
        torch.nn.utils.clip_grad_norm_(self.mixer.parameters(), c.grad_clip)
        self.opt.step()
        soft_update(self.q_t, self.q, c.tau)
        soft_update(self.mixer_t, self.mixer, c.tau)
        self.updates += 1
        return {"losses/critic": loss.detach(), "losses/td": td.detach(), "losses/cql": cql.detach(),
                "losses/q_data": q_tot.detach().mean()}

    def _modules(self) -> dict:
        return {"q": self.q, "mixer": self.mixer, "q_t": self.q_t, "mixer_t": self.mixer_t, "opt": self.opt}
