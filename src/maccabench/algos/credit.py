"""What the credit-assignment backbones (QMIX-CQL, SHAQ / SHAQ-CQL, SQDDPG) share: masked
operations over available discrete actions, random coalitions, QMIX's monotone mixer, and the
base class that gives a discrete backbone its action selection and checkpoints.

Availability: every max / argmax / softmax / log-sum-exp over actions is restricted to the
agent's available actions by filling the others with `UNAVAILABLE`, a large *finite* negative
number, so an agent with a single available action (a dead SMAX unit may only stop) gets that
action's value, never NaN, and gradients stay finite.

Layout as in `algos.common`: the loop's batches are [B, N, ...], per-agent networks
(`nets.AgentMLP`, one network per agent, stacked) run agent-major [N, B, ...]; mixers read [B, N].
Choices the papers leave open are in docs/credit_methods.md.
"""
from __future__ import annotations

import abc

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import MaccabenchError
from ..nets import eval_mode

UNAVAILABLE = -1e9   # the score of an unavailable action (finite: see the module docstring)


# ---- available actions ------------------------------------------------------------------------

def masked_scores(x: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
    """x [..., A] with unavailable entries (avail False) set to UNAVAILABLE."""
    return x.masked_fill(~avail, UNAVAILABLE)


def greedy(q: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
    """The best available action: q [..., A], avail bool [..., A] -> int64 [...]."""
    return masked_scores(q, avail).argmax(dim=-1)


def masked_logsumexp(q: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
    """log sum over the available actions of exp(q): [..., A] -> [...]."""
    return torch.logsumexp(masked_scores(q, avail), dim=-1)


def masked_softmax(logits: torch.Tensor, avail: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """softmax(logits / temperature) over the available actions (exactly 0 elsewhere)."""
    return torch.softmax(masked_scores(logits / temperature, avail), dim=-1) * avail


def sample_available(avail: torch.Tensor, m: int, gen: torch.Generator | None) -> torch.Tensor:
    """m actions per row, each uniform over that row's available actions (with replacement):
    avail bool [..., A] -> int64 [..., m]."""
    shape, A = avail.shape[:-1], avail.shape[-1]
    rows = avail.reshape(-1, A).float()
    return torch.multinomial(rows, m, replacement=True, generator=gen).view(*shape, m)


def batch_tensors(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """The discrete batch's actions (int64 [B, N]), availabilities now and next (bool [B, N, A])
    and the team reward [B], whatever dtype the loop stores them in. These backbones regress one
    joint value on the team reward: every agent's reward is the same (a shared assigner, checked by
    `hparams.shared_rewards_problem`), so agent 0's is the team's."""
    return (batch["actions"].long(), batch["avail_actions"].bool(), batch["next_avail_actions"].bool(),
            batch["rewards"][:, 0])


def require_discrete(spec, backbone: str) -> None:
    if not spec.discrete:
        raise MaccabenchError(f"backbone {backbone} is written for discrete actions (Q-values per action, "
                              f"availability masks), but env {spec.env!r} ({spec.suite}) has continuous ones. "
                              f"Fix: train this env with a continuous backbone (icql, omar, maicq)")


# ---- coalitions -------------------------------------------------------------------------------

def random_orderings(b: int, m: int, n: int, gen: torch.Generator | None, device) -> torch.Tensor:
    """Each agent's position in m uniformly random orderings of the n agents per batch row:
    int64 [b, m, n], a permutation of 0..n-1 along the last axis."""
    keys = torch.rand(b, m, n, generator=gen, device=device)
    return keys.argsort(dim=-1).argsort(dim=-1)


def predecessors(positions: torch.Tensor, include_self: bool) -> torch.Tensor:
    """Coalition membership from orderings: positions [b, m, n] -> float [b, m, n_i, n_j], 1 where
    agent j comes before agent i (or is i, with include_self): agent i's coalition C_i (or C_i + {i})."""
    pi, pj = positions[..., :, None], positions[..., None, :]
    return (pj <= pi if include_self else pj < pi).float()


# ---- QMIX's monotone mixer -----------------------------------------------------------------------

def hypernet(state_dim: int, hidden: int, out: int) -> nn.Module:
    """QMIX's two-layer hypernetwork (hypernet_layers: 2)."""
    return nn.Sequential(nn.Linear(state_dim, hidden), nn.ReLU(), nn.Linear(hidden, out))


class QMixer(nn.Module):
    """QMIX (Rashid et al. 2018): Q_tot = w2(s)^T elu(W1(s)^T q + b1(s)) + V(s), with W1 and w2 the
    absolute values of hypernetwork outputs, so dQ_tot/dq_i >= 0 for every agent (monotone)."""

    def __init__(self, state_dim: int, n: int, embed: int, hypernet_embed: int):
        super().__init__()
        self.n, self.embed = n, embed
        self.w1 = hypernet(state_dim, hypernet_embed, n * embed)
        self.b1 = nn.Linear(state_dim, embed)
        self.w2 = hypernet(state_dim, hypernet_embed, embed)
        self.v = hypernet(state_dim, embed, 1)

    def forward(self, q: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """q [B, N] -> [B], or q [B, M, N] (M joint actions per state) -> [B, M]; the
        hypernetworks run once per state."""
        single = q.dim() == 2
        q = q[:, None] if single else q
        B = state.shape[0]
        w1 = self.w1(state).abs().view(B, self.n, self.embed)
        hidden = F.elu(torch.bmm(q, w1) + self.b1(state)[:, None])                      # [B, M, E]
        w2 = self.w2(state).abs().view(B, self.embed, 1)
        out = torch.bmm(hidden, w2).squeeze(-1) + self.v(state)                         # [B, M]
        return out[:, 0] if single else out


# ---- the base of the discrete backbones ------------------------------------------------------------

class DiscreteBackbone(abc.ABC):
    """Action selection and checkpoints. Subclasses set `device`, `gen`, `updates`, implement
    `scores(obs)` (per-agent action scores the greedy policy maximises: Q_i or the actor's logits)
    and list their networks and optimisers in `_modules()`."""
    device: torch.device
    gen: torch.Generator | None = None
    updates: int = 0

    @abc.abstractmethod
    def scores(self, obs: torch.Tensor) -> torch.Tensor:
        """obs [N, B, O] -> scores [N, B, A]."""

    @abc.abstractmethod
    def _modules(self) -> dict:
        """name -> network or optimiser: what state_dict saves and load_state_dict restores."""

    @abc.abstractmethod
    def policy_net(self) -> nn.Module:
        """The network `scores` runs (switched to eval mode for rollouts)."""

    @torch.no_grad()
    def act(self, obs: np.ndarray, avail: np.ndarray) -> np.ndarray:
        """obs [K, N, O], avail bool [K, N, A] -> int64 [K, N]: each agent's best available action
        (deterministic; input BatchNorm, if any, on its running statistics)."""
        x = torch.as_tensor(obs, dtype=torch.float32, device=self.device).transpose(0, 1)
        ok = torch.as_tensor(np.asarray(avail, bool), device=self.device).transpose(0, 1)
        with eval_mode(self.policy_net()):
            return greedy(self.scores(x).float(), ok).transpose(0, 1).cpu().numpy()

    def state_dict(self) -> dict:
        return {**{k: m.state_dict() for k, m in self._modules().items()},
                "gen": self.gen.get_state() if self.gen is not None else None, "updates": self.updates}

    def load_state_dict(self, d: dict) -> None:
        for k, m in self._modules().items():
            m.load_state_dict(d[k])
        if self.gen is not None:
            self.gen.set_state(d["gen"])
        self.updates = int(d["updates"])
