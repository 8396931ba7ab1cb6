"""Offline MARL backbones, one module each (`icql`, `omar`, `maicq`). A backbone implements its
update and its action selection; batching, evaluation, logging and checkpoints belong to the one
training loop in `maccabench.train`.

They are registered in `maccabench.registry.BACKBONES` (by module path, with their config
dataclasses from `maccabench.hparams`), so importing this package imports no backbone and no torch.
"""
from ..registry import BACKBONES

__all__ = ["BACKBONES"]
