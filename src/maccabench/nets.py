"""Per-agent networks evaluated for all agents at once.

`AgentMLP` holds N independent MLPs as stacked weights [N, in, out], so one batched matmul runs
every agent's network: no Python loop over agents, and agents keep separate parameters.
Inputs are [N, B, in]; agents with smaller observation or action sizes use zero padding.

Two options reproduce OMAR's MPE networks (ling-pan/OMAR, utils/networks.py): `input_norm`, a
BatchNorm1d on the input of every network (`AgentBatchNorm`: batch statistics in train mode, running
statistics in eval mode), and `last_init`, the last layer's weights drawn from U[-last_init,
last_init] (OMAR: 3e-3 on actors, default initialisation on critics; biases keep the default).
A network is in train mode unless a caller switches it (`eval_mode`, for rollouts).

`AgentMLP.forward_sampled` evaluates a network on many sampled actions per state (CQL's and OMAR's
samples) without repeating the states: the first layer's state part runs once per state and the
action part once per sample (the same maths as the network on the repeated, concatenated input).
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
        if self.weight.shape[-1] == 1:    # a critic's value head
            return _VectorOutput.apply(x, self.weight, self.bias)
        return torch.baddbmm(self.bias, x, self.weight)


class _VectorOutput(torch.autograd.Function):
    """baddbmm(b, x, w) for a one-column w [N, H, 1]: the same values and gradients, computed as
    [N, 1, H] x [N, H, R] products and a broadcast multiply. A bmm with one output column, and
    its backward's outer products, run several times slower on CPU than these."""

    @staticmethod
    def forward(ctx, x, w, b):
        ctx.save_for_backward(x, w)
        return torch.baddbmm(b, w.transpose(1, 2), x.transpose(1, 2)).transpose(1, 2)

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        # in the inputs' dtypes (under autocast x and g may be bf16, w and b fp32)
        gx = (g * w.transpose(1, 2)).to(x.dtype) if ctx.needs_input_grad[0] else None
        gw = torch.bmm(g.transpose(1, 2), x.to(g.dtype)).transpose(1, 2).to(w.dtype) if ctx.needs_input_grad[1] else None
        gb = g.sum(dim=1, keepdim=True).to(w.dtype) if ctx.needs_input_grad[2] else None
        return gx, gw, gb


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

    def forward_features(self, x: torch.Tensor, features: slice, rows: int) -> torch.Tensor:
        """Normalise x [N, R, k], the input features `features` (k of them) of a batch of `rows`
        rows in which each of x's R rows is repeated rows / R times (R = rows: no repeats).
        Repeating rows changes neither the batch mean nor the biased variance, so the output is what
        `forward` gives on the repeated batch; the running variance is updated with the unbiased
        variance of `rows` rows, also as `forward` on the repeated batch would."""
        w, b = self.weight[:, features], self.bias[:, features]
        if self.training:
            var, mean = torch.var_mean(x, dim=1, correction=0)
            with torch.no_grad():   # through .data: as F.batch_norm, without bumping the buffers' version
                # counter (earlier passes' saved batch_norm nodes hold the buffers for their backward)
                self.running_mean.data[:, features].lerp_(mean, self.momentum)
                self.running_var.data[:, features].lerp_(var * (rows / max(rows - 1, 1)), self.momentum)
        else:
            mean, var = self.running_mean[:, features], self.running_var[:, features]
        scale = torch.rsqrt(var + self.eps) * w
        return torch.addcmul((b - mean * scale)[:, None], x, scale[:, None])


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
            x = layer(x).relu_()     # in place: a matmul's backward does not need its output
        return self._out(self.layers[-1](x))

    def _out(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x) if self.out_act == "tanh" else x

    def forward_sampled(self, state: torch.Tensor, samples: torch.Tensor) -> torch.Tensor:
        """The network on cat([state, sample]) for M samples per state: state [N, B, S], samples
        [N, B, M, A] -> [N, B, M, d_out], equal to `forward` on the [N, B * M, S + A] input that
        repeats each state M times (repeat_interleave) beside its samples. The first layer's state
        part (and its input BatchNorm) runs on the B states once, its action part on the B * M samples."""
        if len(self.layers) < 2:
            raise ValueError("forward_sampled needs a hidden layer (the state part is added before its ReLU)")
        N, B, M, A = samples.shape
        S = state.shape[-1]
        acts = samples.reshape(N, B * M, A)
        if self.norm is not None:
            state = self.norm.forward_features(state, slice(0, S), B * M)
            acts = self.norm.forward_features(acts, slice(S, S + A), B * M)
        first = self.layers[0]
        h_state = torch.baddbmm(first.bias, state, first.weight[:, :S])                      # [N, B, H]
        # out of place: an in-place add on the bmm's view would make autograd copy slices back
        h = torch.add(torch.bmm(acts, first.weight[:, S:]).view(N, B, M, -1), h_state.unsqueeze(2)).relu_()
        h = h.view(N, B * M, -1)
        for layer in self.layers[1:-1]:
            h = layer(h).relu_()
        return self._out(self.layers[-1](h)).view(N, B, M, -1)

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
