"""Per-agent networks evaluated for all agents at once.

`AgentMLP` holds N independent MLPs as stacked weights [N, in, out], so one batched matmul runs
every agent's network: no Python loop over agents, and agents keep separate parameters.
Inputs are [N, B, in]; agents with smaller observation or action sizes use zero padding.
"""
from __future__ import annotations

import math

import torch
from torch import nn


class AgentLinear(nn.Module):
    def __init__(self, n: int, d_in: int, d_out: int):
        super().__init__()
        bound = 1.0 / math.sqrt(d_in)  # nn.Linear's default initialisation, per agent
        self.weight = nn.Parameter(torch.empty(n, d_in, d_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n, 1, d_out).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class AgentMLP(nn.Module):
    def __init__(self, n: int, d_in: int, hidden: int, d_out: int, layers: int = 2, out_act: str | None = None):
        super().__init__()
        dims = [d_in] + [hidden] * layers + [d_out]
        self.n, self.d_in, self.d_out = n, d_in, d_out
        self.layers = nn.ModuleList(AgentLinear(n, a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.out_act = out_act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers[:-1]:
            x = torch.relu(layer(x))
        x = self.layers[-1](x)
        return torch.tanh(x) if self.out_act == "tanh" else x

    def subset(self, idx: list[int]) -> "AgentMLP":
        """A new AgentMLP holding copies of the networks of agents `idx`."""
        sub = AgentMLP(len(idx), self.d_in, self.layers[0].weight.shape[-1], self.d_out,
                       len(self.layers) - 1, self.out_act)
        with torch.no_grad():
            for s, l in zip(sub.layers, self.layers):
                s.weight.copy_(l.weight[idx])
                s.bias.copy_(l.bias[idx])
        return sub


def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    with torch.no_grad():
        for t, s in zip(target.parameters(), source.parameters()):
            t.lerp_(s, tau)


def device() -> torch.device:
    """CUDA when the job has a GPU, CPU otherwise."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
