"""Per-agent networks evaluated for all agents at once.

`AgentMLP` holds N independent MLPs as stacked weights [N, in, out], so one batched matmul runs
every agent's network: no Python loop over agents, and agents keep separate parameters.
Inputs are [N, B, in]; agents with smaller observation or action sizes use zero padding.

Two options reproduce OMAR's MPE networks (ling-pan/OMAR, utils/networks.py): `input_norm`, a
BatchNorm1d on the input of every network (`AgentBatchNorm`: batch statistics in train mode, running
statistics in eval mode), and `last_init`, the last layer's weights drawn from U[-last_init,
last_init] (OMAR: 3e-3 on actors, default initialisation on critics; biases keep the default).
A network is in train mode unless a caller switches it (`eval_mode`, for rollouts).
"""
from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import nn


class AgentLinear(nn.Module):
    def __init__(self, n: int, d_in: int, d_out: int):
        super().__init__()
        bound = 1.0 / math.sqrt(d_in)  # nn.Linear's default initialisation, per agent
        self.weight = nn.Parameter(torch.empty(n, d_in, d_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n, 1, d_out).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class AgentBatchNorm(nn.Module):
    """BatchNorm1d for each agent separately: x [N, B, d] is normalised over the batch dimension
    with each agent's own statistics and affine parameters (stacked [N, d] like the weights).
    torch's BatchNorm1d semantics and defaults, as OMAR uses them: momentum 0.1, eps 1e-5, affine
    weight 1 and bias 0 at start, running variance updated with the unbiased batch variance."""

    def __init__(self, n: int, d: int, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.weight = nn.Parameter(torch.ones(n, d))
        self.bias = nn.Parameter(torch.zeros(n, d))
        self.register_buffer("running_mean", torch.zeros(n, d))
        self.register_buffer("running_var", torch.ones(n, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # [N, B, d] -> [B, N*d]: agent i's feature j is one BatchNorm channel
        N, B, d = x.shape
        flat = x.transpose(0, 1).reshape(B, N * d)
        y = F.batch_norm(flat, self.running_mean.view(-1), self.running_var.view(-1), self.weight.view(-1),
                         self.bias.view(-1), self.training, self.momentum, self.eps)
        return y.view(B, N, d).transpose(0, 1)


class AgentMLP(nn.Module):
    def __init__(self, n: int, d_in: int, hidden: int, d_out: int, layers: int = 2, out_act: str | None = None,
                 input_norm: bool = False, last_init: float = 0.0):
        super().__init__()
        dims = [d_in] + [hidden] * layers + [d_out]
        self.n, self.d_in, self.d_out = n, d_in, d_out
        self.norm = AgentBatchNorm(n, d_in) if input_norm else None
        self.layers = nn.ModuleList(AgentLinear(n, a, b) for a, b in zip(dims[:-1], dims[1:]))
        if last_init > 0:   # drawn after the default init, so last_init = 0 consumes no extra randomness
            with torch.no_grad():
                self.layers[-1].weight.uniform_(-last_init, last_init)
        self.out_act = out_act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.norm is not None:
            x = self.norm(x)
        for layer in self.layers[:-1]:
            x = torch.relu(layer(x))
        x = self.layers[-1](x)
        return torch.tanh(x) if self.out_act == "tanh" else x

    def subset(self, idx: list[int]) -> "AgentMLP":
        """A new AgentMLP holding copies of the networks of agents `idx`."""
        sub = AgentMLP(len(idx), self.d_in, self.layers[0].weight.shape[-1], self.d_out,
                       len(self.layers) - 1, self.out_act, input_norm=self.norm is not None)
        with torch.no_grad():
            for name, tensor in self.state_dict().items():   # every agent-stacked tensor: dim 0 is the agent
                sub.state_dict()[name].copy_(tensor[idx])
        return sub.train(self.training)


def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """Parameters only (BatchNorm's affine included): running statistics are buffers and are not
    copied, as in OMAR; a target network runs in train mode in updates, on its own batch statistics."""
    with torch.no_grad():
        for t, s in zip(target.parameters(), source.parameters()):
            t.lerp_(s, tau)


@contextlib.contextmanager
def eval_mode(module: nn.Module):
    """`module` in eval mode (input BatchNorm on its running statistics) inside the block, its
    previous mode afterwards: rollouts act in eval mode, every update runs in train mode."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


def device() -> torch.device:
    """CUDA when the job has a GPU, CPU otherwise."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
