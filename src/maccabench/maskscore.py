"""Mask recovery: a MACCA run's learned causal masks scored against an env's true causal structure.

Where an env's task declares its causal masks (envs.causal_masks_of; today the credit task
`cn-credit`), the run's last mask snapshot (masks.npz: the mean mask probability over the probe
batch at the final evaluation) is thresholded at the causal model's `h`, as relabelling with
`clip_h` thresholds it, and compared entry by entry with the true mask: precision, recall and F1
per agent, for s->r and a->r separately, and their mean over agents. The result is recorded in
reward_recovery.json under runfolder.MASK_RECOVERY (None for envs without ground truth).

Precision is undefined (None) for an agent whose thresholded mask is empty, recall for one whose
true mask is empty, F1 where both are; means leave undefined agents out (None if all are).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import layout
from .runfolder import MASK_ARRAYS

KINDS = MASK_ARRAYS[1:]               # the masks of masks.npz: s_to_r, a_to_r
MEASURES = ("precision", "recall", "f1")


def _ratio(num: int, den: int) -> float | None:
    return None if den == 0 else num / den


def _mean(values: list) -> float | None:
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else None


def score_mask(learned: np.ndarray, truth: np.ndarray) -> dict:
    """Precision, recall and F1 of boolean masks learned [N, D] against truth [N, D], per agent
    (row) and averaged over agents: {measure: {"per_agent": [...], "mean": float | None}}."""
    learned, truth = np.asarray(learned, bool), np.asarray(truth, bool)
    if learned.shape != truth.shape:
        raise ValueError(f"learned mask {learned.shape} and true mask {truth.shape} differ in shape")
    out = {m: [] for m in MEASURES}
    for pred, true in zip(learned, truth):
        tp, fp, fn = int((pred & true).sum()), int((pred & ~true).sum()), int((~pred & true).sum())
        out["precision"].append(_ratio(tp, tp + fp))
        out["recall"].append(_ratio(tp, tp + fn))
        out["f1"].append(_ratio(2 * tp, 2 * tp + fp + fn))
    return {m: {"per_agent": v, "mean": _mean(v)} for m, v in out.items()}


def score_masks(probabilities: dict[str, np.ndarray], truth: tuple[np.ndarray, np.ndarray], h: float) -> dict:
    """Mask recovery of one snapshot: probabilities {"s_to_r": [N, S], "a_to_r": [N, N*A]} against
    truth (state, action) booleans of the same shapes, thresholded at p >= h."""
    return {"threshold": float(h),
            **{kind: score_mask(probabilities[kind] >= h, true) for kind, true in zip(KINDS, truth)}}


def mask_recovery_of_run(run_dir) -> dict | None:
    """Mask recovery of a finished MACCA run from its config.yaml and masks.npz, scored at its final
    snapshot; None where its env declares no true causal masks."""
    from .envs import causal_masks_of
    from .hparams import parse_hp
    from .registry import ASSIGNERS
    from .runfolder import RunError, read_config, read_masks

    job = read_config(run_dir)    # the recorded job (config.yaml also holds what the run added, e.g. its device)
    truth = causal_masks_of(job["env"])
    if truth is None:
        return None
    h = parse_hp(ASSIGNERS[job["rewards"]].config, job["rewards_hp"], "rewards_hp").h
    masks = read_masks(run_dir)
    for kind, true in zip(KINDS, truth):
        if masks[kind].shape[1:] != true.shape:
            raise RunError(Path(run_dir) / layout.MASKS, f"has {kind} masks of shape {masks[kind].shape[1:]}, but "
                           f"env {job['env']['name']!r} has true masks of shape {true.shape} (another task or task_args?)",
                           "rerun the training job (snakemake ... --forcerun=train)")
    return {"updates": int(masks["updates"][-1]),
            **score_masks({kind: masks[kind][-1] for kind in KINDS}, truth, h)}
