"""SHAQ and SHAQ-CQL: Shapley Q-learning (Wang, Zhang, Kim, Gu 2022, "SHAQ: Incorporating Shapley
Value Theory into Multi-Agent Q-Learning", NeurIPS; code: hsvgbkhgbv/shapley-q-learning) on
offline team-reward data, and SHAQ with each agent's CQL term (the MACCA paper's SHAQ-CQL).

Markov Shapley Q-values: per-agent Q_i(o_i, .) over discrete actions and

  Q_tot(s, a) = sum_i delta_i(s, a_i) Q_i(o_i, a_i),
  delta_i = 1 where a_i is agent i's greedy available action, else alpha_i(s, a_i),
  alpha_i = 1 + mean over K random orderings of |F_s(mean_{j in C_i} Q_j, Q_i)|,

C_i the agents before i in an ordering (the empty coalition gives 0) and F_s a monotone network
(abs-valued hypernetwork weights from the state, `ShapleyAlpha`); alpha_i is in [1, inf) as in
SHAQ's code. The target is the sum of the agents' greedy target values (delta = 1 there):

  TD:   (Q_tot(s, a) - y)^2,  y = R + gamma (1 - terminal) sum_i Qbar_i(o'_i, a'_i),
        a'_i greedy among the available actions (double_q: by the online Q_i, as SHAQ's code)
  CQL (SHAQ-CQL, cql_alpha > 0):  cql_alpha * sum_i [ logsumexp_{a in avail_i} Q_i(o_i, a) - Q_i(o_i, a_i) ]

Q_i reach the alpha network undetached (SHAQ's code). Two Adam optimisers as SHAQ's two RMSprops:
the agents at `critic_lr`, the alpha network at `mixer_lr`; soft target updates (`tau`).
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from ..envs.base import EnvSpec
from ..hparams import SHAQConfig
from ..nets import soft_update
from .common import (DiscreteBackbone, agent_major, stacked_q, clip_grad_norm_per_agent, generator_for, in_precision,
                     masked_argmax, masked_logsumexp)
from .credit import batch_tensors, hypernet, predecessors, random_orderings
from .qmix_cql import chosen, next_values


# ---- the losses, as functions of tensors ---------------------------------------------------------

def shapley_weights(is_greedy: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """delta_i: 1 where the agent's action is its greedy one, alpha_i elsewhere. [B, N] -> [B, N]."""
    return torch.where(is_greedy, torch.ones_like(alpha), alpha)


def shapley_q_tot(q_data: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """sum_i delta_i Q_i: [B, N], [B, N] -> [B]."""
    return (delta * q_data).sum(dim=-1)


def per_agent_cql(q: torch.Tensor, q_data: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
    """Sum over agents of the batch mean of logsumexp_{available a} Q_i(o_i, a) - Q_i(o_i, a_i):
    q [N, B, A], q_data [N, B], avail [N, B, A] -> []."""
    return (masked_logsumexp(q, avail) - q_data).mean(dim=-1).sum()


def coalition_means(q_data: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Mean Q of agent i's coalition (the agents before it; 0 when none) per ordering:
    q_data [B, N], positions [B, K, N] -> [B, K, N]."""
    before = predecessors(positions, include_self=False)                          # [B, K, N_i, N_j]
    total = (before * q_data[:, None, None, :]).sum(dim=-1)
    return total / before.sum(dim=-1).clamp(min=1.0)


class ShapleyAlpha(nn.Module):
    """alpha_i(s, a_i) = 1 + mean_k |F_s(coalition mean Q, Q_i)|, F_s a two-input monotone network
    whose weights are absolute values of hypernetworks of the state (SHAQ's mixer)."""

    def __init__(self, state_dim: int, embed: int, hypernet_embed: int):
        super().__init__()
        self.embed = embed
        self.w1 = hypernet(state_dim, hypernet_embed, 2 * embed)
        self.b1 = nn.Linear(state_dim, embed)
        self.w2 = hypernet(state_dim, hypernet_embed, embed)
        self.b2 = hypernet(state_dim, embed, 1)

    def forward(self, q_data: torch.Tensor, state: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """q_data [B, N], state [B, S], positions [B, K, N] (random orderings) -> alpha [B, N] >= 1."""
        B = state.shape[0]
        x = torch.stack([coalition_means(q_data, positions), q_data[:, None].expand_as(positions)], -1)  # [B,K,N,2]
        w1 = self.w1(state).abs().view(B, 2, self.embed)
        hidden = F.elu(torch.einsum("bknc,bce->bkne", x, w1) + self.b1(state)[:, None, None])
        y = torch.einsum("bkne,be->bkn", hidden, self.w2(state).abs()) + self.b2(state)[:, None]
        return 1.0 + y.abs().mean(dim=1)


class SHAQ(DiscreteBackbone):
    def __init__(self, spec: EnvSpec, cfg: SHAQConfig, device: torch.device, seed: int):
        self.spec, self.cfg, self.device = spec, cfg, torch.device(device)
        self.n, O, A = spec.n_agents, spec.obs_dim, spec.action_dim
        self.mask = torch.as_tensor(spec.action_mask(), device=self.device).bool()      # [N, A] real actions
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.q = stacked_q(self.n, O, A, cfg)
            self.acting = self.q   # DiscreteBackbone.act: greedy over its scores
            self.alpha = ShapleyAlpha(spec.state_dim, cfg.mixer_embed, cfg.hypernet_embed)
        self.q.to(self.device), self.alpha.to(self.device)
        self.q_t = copy.deepcopy(self.q)
        self.opt = torch.optim.Adam(self.q.parameters(), lr=cfg.critic_lr)
        self.alpha_opt = torch.optim.Adam(self.alpha.parameters(), lr=cfg.mixer_lr)
        self.gen = generator_for(self.device, seed)
        self.updates = 0

    def mix(self, q: torch.Tensor, act: torch.Tensor, avail: torch.Tensor, state: torch.Tensor):
        """Q_tot(s, a) = sum_i delta_i Q_i(o_i, a_i) from q [N, B, A], actions [N, B], avail [N, B, A],
        state [B, S]; also is_greedy [B, N] and alpha [B, N] (delta_i where a_i is not greedy)."""
        q_data = chosen(q, act).T                                                         # [B, N]
        is_greedy = (act == masked_argmax(q.detach(), avail)).T
        positions = random_orderings(q.shape[1], self.cfg.coalition_samples, self.n, self.gen, self.device)
        alpha = self.alpha(q_data, state, positions)
        return shapley_q_tot(q_data, shapley_weights(is_greedy, alpha)), is_greedy, alpha

    @in_precision
    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        c = self.cfg
        actions, avail, next_avail, team_reward = batch_tensors(batch)
        obs, nobs = agent_major(batch["obs"]), agent_major(batch["next_obs"])
        act, avail, next_avail = actions.T, agent_major(avail), agent_major(next_avail)
        with torch.no_grad():
            q_next_t = self.q_t(nobs)
            q_next = self.q(nobs) if c.double_q else q_next_t
            y = team_reward + c.gamma * (1.0 - batch["terminals"]) * next_values(q_next, q_next_t, next_avail).sum(0)
        q = self.q(obs)                                                                   # [N, B, A]
        q_data = chosen(q, act)                                                           # [N, B]
        q_tot, is_greedy, alpha = self.mix(q, act, avail, batch["state"])
        td = (q_tot - y).pow(2).mean()
        cql = per_agent_cql(q, q_data, avail) if c.cql_alpha > 0 else torch.zeros_like(td)
        loss = td + c.cql_alpha * cql
        self.opt.zero_grad(set_to_none=True)
        self.alpha_opt.zero_grad(set_to_none=True)
        loss.backward()
        clip_grad_norm_per_agent(list(self.q.parameters()), self.n, c.grad_clip)
        torch.nn.utils.clip_grad_norm_(self.alpha.parameters(), c.grad_clip)
        self.opt.step()
        self.alpha_opt.step()
        soft_update(self.q_t, self.q, c.tau)
        self.updates += 1
        non_greedy = ~is_greedy
        alpha_mean = (alpha.detach() * non_greedy).sum() / non_greedy.sum().clamp(min=1)
        return {"losses/critic": loss.detach(), "losses/td": td.detach(), "losses/cql": cql.detach(),
                "losses/q_data": q_tot.detach().mean(), "losses/alpha_non_greedy": alpha_mean,
                "losses/greedy_fraction": is_greedy.float().mean()}

    def _modules(self) -> dict:
        return {"q": self.q, "alpha": self.alpha, "q_t": self.q_t, "opt": self.opt, "alpha_opt": self.alpha_opt}
