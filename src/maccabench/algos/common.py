"""Pieces every backbone shares: masked means over padded action dimensions, per-agent gradient
clipping, and the agent-major layout helpers. (Their typed hyper-parameters, torch-free, are in
`maccabench.hparams`.)

Layout: the loop's batches are [B, N, ...]; backbones work agent-major ([N, B, ...]) because
`nets.AgentMLP` runs every agent's network as one batched matmul over that layout.
"""
from __future__ import annotations

import abc
import functools

import numpy as np
import torch

from ..errors import MaccabenchError
from ..hparams import BackboneConfig
from ..nets import AgentMLP, eval_mode


# ---- tensors ----------------------------------------------------------------------------------

def agent_major(x: torch.Tensor) -> torch.Tensor:
    """[B, N, ...] -> [N, B, ...]"""
    return x.transpose(0, 1)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the batch and each agent's *real* action dimensions. x [N, B, A], mask [N, A]
    -> [N]. Padded dimensions (agents with fewer actions) count for nothing."""
    return (x * mask[:, None]).sum(dim=(1, 2)) / (mask.sum(dim=1) * x.shape[1])


def clip_grad_norm_per_agent(params, n: int, max_norm: float) -> torch.Tensor:
    """Clip each agent's gradient norm separately, as if every agent had its own optimiser
    (OMAR clips each agent's critic and actor at 0.5). Parameters are stacked per agent along
    dim 0 (`AgentLinear`: [n, ...]). Returns the per-agent norms before clipping."""
    grads = [p.grad for p in params if p.grad is not None]
    sq = torch.zeros(n, device=grads[0].device)
    for g in grads:
        sq += g.reshape(n, -1).pow(2).sum(dim=1)
    norms = sq.sqrt()
    scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(scale.view(n, *([1] * (g.dim() - 1))))
    return norms


def require_continuous(spec, backbone: str) -> None:
    """These backbones act with deterministic tanh actors: continuous actions only (MPE)."""
    if spec.discrete:
        raise MaccabenchError(f"backbone {backbone} is written for continuous actions, but env {spec.env!r} "
                              f"({spec.suite}) has discrete ones. Fix: train this env with a discrete-action "
                              f"backbone (add one to maccabench.registry.BACKBONES) or remove it from the tier's envs")


# The backbone options (`training.common`) that reproduce OMAR's MPE networks (ling-pan/OMAR,
# utils/networks.py): BatchNorm1d on every actor and critic input, actors' last layer in +-3e-3.
OMAR_NETWORKS = {"input_norm": True, "actor_last_init": 3e-3}


def stacked_actor(n: int, obs_dim: int, action_dim: int, cfg: BackboneConfig) -> AgentMLP:
    """Every agent's deterministic tanh actor, with the config's network options (OMAR: input
    BatchNorm and a last layer in +-3e-3)."""
    return AgentMLP(n, obs_dim, cfg.hidden, action_dim, out_act="tanh", input_norm=cfg.input_norm,
                    last_init=cfg.actor_last_init)


def stacked_critic(n: int, in_dim: int, cfg: BackboneConfig) -> AgentMLP:
    """Every agent's critic on (o_i, a_i): input BatchNorm as the actors, default initialisation
    everywhere (as OMAR's critics)."""
    return AgentMLP(n, in_dim, cfg.hidden, 1, input_norm=cfg.input_norm)


def in_precision(update):
    """Run a backbone's `update(batch)` in its config's `precision`: bf16 = under bf16 autocast (the
    matrix products and their backward in bf16; parameters, Adam and autocast's fp32 ops stay fp32)."""
    @functools.wraps(update)
    def run(self, batch):
        if self.cfg.precision == "bf16":
            with torch.autocast(self.device.type, dtype=torch.bfloat16):
                return update(self, batch)
        return update(self, batch)
    return run


def generator_for(device: torch.device, seed: int) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return g


class ActorBackbone(abc.ABC):
    """What every backbone with deterministic stacked actors shares: action selection and
    checkpoints. Subclasses set `actor`, `mask`, `device`, `updates`, `gen` (or None) and list
    their networks and optimisers in `_modules()` (their state_dicts carry BatchNorm's running
    statistics)."""
    actor: torch.nn.Module
    mask: torch.Tensor
    device: torch.device
    gen: torch.Generator | None = None
    updates: int = 0

    def pi(self, actor: torch.nn.Module, obs: torch.Tensor) -> torch.Tensor:
        """obs [N, B, O] -> actions [N, B, A], padded dimensions zero."""
        return actor(obs) * self.mask[:, None]

    @staticmethod
    def q(critic: torch.nn.Module, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Per-agent critic on (o_i, a_i): [N, B, O], [N, B, A] -> [N, B]"""
        return critic(torch.cat([obs, act], dim=-1)).squeeze(-1)

    @staticmethod
    def q_sampled(critic: torch.nn.Module, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Per-agent critic on M sampled actions per observation: [N, B, O], [N, B, M, A] -> [N, B, M],
        the observations' part of the first layer computed once (`AgentMLP.forward_sampled`)."""
        return critic.forward_sampled(obs, act).squeeze(-1)

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> np.ndarray:
        """[K, N, O] -> [K, N, A], deterministic (evaluation), the actor in eval mode (input
        BatchNorm on its running statistics, so an observation's action does not depend on the
        others it is batched with); every other forward pass, in `update`, runs in train mode."""
        x = torch.as_tensor(obs, dtype=torch.float32, device=self.device).transpose(0, 1)
        with eval_mode(self.actor):
            return self.pi(self.actor, x).transpose(0, 1).cpu().numpy()

    @abc.abstractmethod
    def _modules(self) -> dict:
        """name -> network or optimiser: what state_dict saves and load_state_dict restores."""

    def state_dict(self) -> dict:
        return {**{k: m.state_dict() for k, m in self._modules().items()},
                "gen": self.gen.get_state() if self.gen is not None else None, "updates": self.updates}

    def load_state_dict(self, d: dict) -> None:
        for k, m in self._modules().items():
            m.load_state_dict(d[k])
        if self.gen is not None:
            self.gen.set_state(d["gen"])
        self.updates = int(d["updates"])

