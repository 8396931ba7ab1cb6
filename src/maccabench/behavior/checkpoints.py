"""After the loop: every checkpoint measured against the final (frozen) opponents, the medium
checkpoint chosen, and the S_random / S_expert references measured (and judged: is the expert
clearly better than the random policy, so that normalised scores mean something?).

Medium: where the game reports wins (SMAX) and the expert wins at all, the first checkpoint whose
win rate reaches MEDIUM_WIN_RATE_FRACTION (a third) of the expert's; otherwise the first whose
return reaches half of the way from random to expert (D4RL/OMAR). Never random or expert
themselves when there is a checkpoint between them."""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ..envs.base import Policy, TeamEnv
from ..rollout import run_episodes
from .online import CURVE_SEED_OFFSET

REFERENCE_SEED_OFFSET = 10_000   # references use episode seeds no training or offline evaluation uses
# Normalised scores 100 (S - S_random) / (S_expert - S_random) are defined only where the expert is
# clearly better than the random policy: S_expert - S_random must exceed this many combined standard
# errors of the two means, sqrt(se_random^2 + se_expert^2) with se = sample std / sqrt(episodes).
# Below that the gap is measurement noise and dividing by it gives arbitrary numbers (5,347, -0.8 ...).
REFERENCE_GAP_STANDARD_ERRORS = 2.0
MEDIUM_WIN_RATE_FRACTION = 1 / 3   # of the expert's win rate (docs/smax.md)


def measure_vs_final_opponents(env: TeamEnv, team_policy: Callable[[dict], Policy],
                               checkpoints: list[tuple[int, dict]], episodes: int,
                               seed: int) -> tuple[list[float], list[float] | None]:
    """Mean team return of every checkpoint (`team_policy(actor state)`) in `env`, whose opponents
    are the final ones, on the same episode seeds as the learning curve; and their win rates
    (None where the game reports no wins)."""
    runs = [run_episodes(env, team_policy(sd), episodes, seed + CURVE_SEED_OFFSET) for _, sd in checkpoints]
    returns = [float(sum(ep.returns) / len(ep.returns)) for ep in runs]
    return returns, [ep.win_rate for ep in runs] if runs[0].win_rate is not None else None


def choose_checkpoints(returns: list[float], win_rates: list[float] | None = None) -> dict[str, int]:
    """quality -> checkpoint index: random = the first, expert = the last, medium as the module
    docstring says (by win rate where there are win rates and the expert's is above 0)."""
    if win_rates is not None and win_rates[-1] > 0:
        target = MEDIUM_WIN_RATE_FRACTION * win_rates[-1]
        medium = next(i for i, w in enumerate(win_rates) if w >= target)
    else:
        target = returns[0] + 0.5 * (returns[-1] - returns[0])
        medium = next(i for i, r in enumerate(returns) if r >= target)
    if medium in (0, len(returns) - 1) and len(returns) > 2:
        medium = min(max(medium, 1), len(returns) - 2)
    return {"random": 0, "medium": medium, "expert": len(returns) - 1}


def measure_references(env: TeamEnv, team_policy: Callable[[dict], Policy], checkpoints: list[tuple[int, dict]],
                       chosen: dict[str, int], episodes: int, seed: int) -> dict[str, dict]:
    """S_random and S_expert: the deterministic random and expert team policies' returns (and win
    rates where the game reports wins)."""
    refs = {}
    for q in ("random", "expert"):
        ep = run_episodes(env, team_policy(checkpoints[chosen[q]][1]), episodes, seed + REFERENCE_SEED_OFFSET)
        r = np.asarray(ep.returns)
        refs[q] = {"mean": float(r.mean()), "std": float(r.std()), "episodes": int(len(r))}
        if ep.win_rate is not None:
            refs[q]["win_rate"] = ep.win_rate
    return refs


def standard_error(ref: dict) -> float:
    """Standard error of a reference's mean ({mean, std, episodes}; std is the population std,
    ddof=0, as measured), i.e. the sample std / sqrt(episodes); nan for a single episode."""
    n = ref["episodes"]
    return ref["std"] / math.sqrt(n - 1) if n > 1 else math.nan


def undefined_score_reason(refs: dict[str, dict]) -> str | None:
    """None where S_expert - S_random exceeds REFERENCE_GAP_STANDARD_ERRORS combined standard
    errors (normalised scores are defined); otherwise why they are not, in words."""
    r, e = refs["random"], refs["expert"]
    gap = e["mean"] - r["mean"]
    se = math.hypot(standard_error(r), standard_error(e))
    measured = (f"S_random {r['mean']:.2f} ± {standard_error(r):.2f} over {r['episodes']} episodes, "
                f"S_expert {e['mean']:.2f} ± {standard_error(e):.2f} over {e['episodes']}")
    if math.isnan(se):
        return (f"S_expert - S_random = {gap:.2f} cannot be told from noise: a reference measured over a single "
                f"episode has no standard error ({measured}); set reference_episodes >= 2")
    k = REFERENCE_GAP_STANDARD_ERRORS
    if gap > k * se:
        return None
    return (f"S_expert - S_random = {gap:.2f} does not exceed {k:g} combined standard errors ({k * se:.2f}): "
            f"the expert is not clearly better than the random policy ({measured})")
