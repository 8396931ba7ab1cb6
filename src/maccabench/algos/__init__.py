"""The registry of offline MARL backbones. Each module implements its update and its action
selection (the `Backbone` protocol below); batching, evaluation, logging and checkpoints belong
to the one training loop in `maccabench.train`.

An *algorithm* (a name under `algorithms:` in config/config.yaml, e.g. `omar` or `macca-omar`)
is a backbone from `ALGOS` plus a reward assigner from `maccabench.rewards.ASSIGNERS`, with options
for either; `config.train_job` resolves it into one job.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from ..envs.base import EnvSpec
from .icql import ICQL
from .maicq import MAICQ
from .omar import OMAR


class Backbone(Protocol):
    def __init__(self, spec: EnvSpec, hp: dict, device: torch.device, seed: int): ...
    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]: ...   # "losses/..." values
    def act(self, obs: np.ndarray) -> np.ndarray: ...                           # [K,N,O] -> [K,N,A]
    def state_dict(self) -> dict: ...
    def load_state_dict(self, d: dict) -> None: ...


# backbone name (as written in `algorithms.<name>.backbone` and `backbones:`) -> implementation.
# Each class carries `Config`, the dataclass of its hyper-parameters (names, types, bounds).
ALGOS: dict[str, type] = {"icql": ICQL, "omar": OMAR, "maicq": MAICQ}


def make_backbone(name: str, spec: EnvSpec, hp: dict, device: torch.device, seed: int) -> Backbone:
    return ALGOS[name](spec, hp, device, seed)
