"""Statistics for tables with few seeds, after Agarwal et al., "Deep RL at the edge of the
statistical precipice" (NeurIPS 2021): interquartile mean, stratified bootstrap confidence
intervals, probability of improvement. Plain numpy, seeded, no rliable dependency.

Scores of one algorithm are given as a list of 1-D arrays, one per *task* (a table cell's env x
quality), each holding that task's per-seed scores. Tasks may have different numbers of seeds.
"""
from __future__ import annotations

import numpy as np


def iqm(scores) -> float:
    """Interquartile mean: the mean of the middle 50% of the pooled scores.

    Fractional trimming: with n scores, n/4 are cut from each end even when n/4 is not whole, the
    two boundary scores then counting with the weight that remains (n=5: 0.75*x2 + x3 + 0.75*x4,
    divided by 2.5). This equals rliable's `scipy.stats.trim_mean(x, 0.25)` whenever n is a
    multiple of 4; for other n it is the exact interquartile mean, where trim_mean would drop
    whole scores only (with 3 seeds it would cut nothing and return the plain mean).
    """
    return float(_iqm_rows(_pooled(scores)[None, :])[0])


def mean(scores) -> float:
    return float(_mean_rows(_pooled(scores)[None, :])[0])


def _iqm_rows(x: np.ndarray) -> np.ndarray:
    """IQM of each row of x [R, n]."""
    n = x.shape[1]
    if n == 0:
        return np.full(len(x), np.nan)
    # weight of the k-th smallest score = length of [k, k+1] inside [n/4, 3n/4]
    k = np.arange(n)
    w = np.clip(np.minimum(k + 1, 3 * n / 4) - np.maximum(k, n / 4), 0, 1)
    return np.sort(x, axis=1) @ w / w.sum()


def _mean_rows(x: np.ndarray) -> np.ndarray:
    return x.mean(axis=1) if x.shape[1] else np.full(len(x), np.nan)


STATISTICS = {"iqm": _iqm_rows, "mean": _mean_rows}


def _as_tasks(scores) -> list[np.ndarray]:
    """A single array (or list of numbers) is one task; a list of arrays is several."""
    if isinstance(scores, np.ndarray) or (len(scores) and np.isscalar(scores[0])):
        return [np.ravel(np.asarray(scores, dtype=float))]
    return [np.ravel(np.asarray(s, dtype=float)) for s in scores]


def _pooled(scores) -> np.ndarray:
    tasks = _as_tasks(scores)
    return np.concatenate(tasks) if tasks else np.zeros(0)


def stratified_resamples(tasks, reps: int, rng: np.random.Generator) -> np.ndarray:
    """[reps, total seeds]: each replicate resamples every task's seeds with replacement, within
    the task (so a task with one seed always contributes that seed, and tasks never mix)."""
    cols = [t[rng.integers(0, len(t), (reps, len(t)))] for t in _as_tasks(tasks) if len(t)]
    return np.concatenate(cols, axis=1) if cols else np.zeros((reps, 0))


def _percentiles(values: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = (1 - confidence) / 2
    lo, hi = np.percentile(values, [100 * alpha, 100 * (1 - alpha)])
    return float(lo), float(hi)


def bootstrap_ci(scores, statistic: str = "iqm", *, reps: int = 2000, confidence: float = 0.95,
                 seed: int = 0) -> tuple[float, float, float]:
    """(point estimate, low, high): the percentile interval of `statistic` ("iqm" or "mean") over
    stratified bootstrap replicates of `scores` (one array = one task, or a list of per-task arrays)."""
    stat = STATISTICS[statistic]
    pooled = _pooled(scores)
    point = float(stat(pooled[None, :])[0])
    if len(pooled) == 0:
        return point, float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    return (point, *_percentiles(stat(stratified_resamples(scores, reps, rng)), confidence))


def probability_of_improvement_task(x, y) -> float:
    """P(X > Y) on one task: over all pairs of a seed of X and a seed of Y, 1 if x > y,
    0.5 if equal, 0 otherwise (the Mann-Whitney U statistic divided by the number of pairs)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.size == 0 or y.size == 0:
        return float("nan")
    return float(_poi_rows(x[None, :], y[None, :])[0])


def _poi_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per replicate r: mean over pairs of [x[r,i] > y[r,j]] + 0.5 [x[r,i] == y[r,j]]."""
    a, b = x[:, :, None], y[:, None, :]
    return ((a > b) + 0.5 * (a == b)).mean(axis=(1, 2))


def _paired_tasks(xs, ys):
    """Tasks where both sides have scores (others cannot be compared)."""
    pairs = [(np.ravel(np.asarray(x, dtype=float)), np.ravel(np.asarray(y, dtype=float))) for x, y in zip(xs, ys)]
    return [(x, y) for x, y in pairs if len(x) and len(y)]


def probability_of_improvement(xs, ys) -> float:
    """P(X > Y) averaged over tasks; xs[m], ys[m] are the seeds' scores on task m (tasks where
    either side has no scores are left out)."""
    pairs = _paired_tasks(xs, ys)
    if not pairs:
        return float("nan")
    return float(np.mean([probability_of_improvement_task(x, y) for x, y in pairs]))


def probability_of_improvement_ci(xs, ys, *, reps: int = 2000, confidence: float = 0.95,
                                  seed: int = 0) -> tuple[float, float, float]:
    """(P(X > Y), low, high): X's and Y's seeds resampled independently within each task."""
    pairs = _paired_tasks(xs, ys)
    point = probability_of_improvement(xs, ys)
    if not pairs:
        return point, float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    per_task = [_poi_rows(stratified_resamples([x], reps, rng), stratified_resamples([y], reps, rng))
                for x, y in pairs]
    return (point, *_percentiles(np.mean(per_task, axis=0), confidence))


def mean_std(x) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; nan for a single seed), as the paper's cells."""
    x = np.ravel(np.asarray(x, dtype=float))
    if len(x) == 0:
        return float("nan"), float("nan")
    return float(x.mean()), (float(x.std(ddof=1)) if len(x) > 1 else float("nan"))
