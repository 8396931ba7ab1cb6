"""What the credit-assignment backbones (QMIX-CQL, SHAQ / SHAQ-CQL, SQDDPG) share beyond
`algos.common` (masked operations over available actions, `DiscreteBackbone`'s greedy acting and
checkpoints): uniform sampling of available actions, random coalitions and QMIX's monotone mixer.

Layout as in `algos.common`: the loop's batches are [B, N, ...], per-agent networks
(`nets.AgentMLP`, one network per agent, stacked) run agent-major [N, B, ...]; mixers read [B, N].
Choices the papers leave open are in docs/credit_methods.md.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .common import masked_log_softmax

def masked_softmax(logits: torch.Tensor, avail: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """softmax(logits / temperature) over the available actions (exactly 0 elsewhere)."""
    return masked_log_softmax(logits / temperature, avail).exp()


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
