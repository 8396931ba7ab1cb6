"""After the loop: every checkpoint measured against the final (frozen) opponents, the medium
checkpoint chosen, and the S_random / S_expert references measured."""
from __future__ import annotations

from typing import Callable

from ..envs.base import Policy, TeamEnv
from ..rollout import evaluate
from .online import CURVE_SEED_OFFSET

REFERENCE_SEED_OFFSET = 10_000   # references use episode seeds no training or offline evaluation uses


def returns_vs_final_opponents(env: TeamEnv, team_policy: Callable[[dict], Policy],
                               checkpoints: list[tuple[int, dict]], episodes: int, seed: int) -> list[float]:
    """Mean team return of every checkpoint (`team_policy(actor state)`) in `env`, whose opponents
    are the final ones; the same episode seeds as the learning curve."""
    return [float(evaluate(env, team_policy(sd), episodes, seed + CURVE_SEED_OFFSET).mean())
            for _, sd in checkpoints]


def choose_checkpoints(returns: list[float]) -> dict[str, int]:
    """quality -> checkpoint index: random = the first, expert = the last, medium = the first whose
    return reaches half of the way from random to expert (never random or expert themselves
    when there is a checkpoint between them)."""
    r_random, r_expert = returns[0], returns[-1]
    target = r_random + 0.5 * (r_expert - r_random)
    medium = next(i for i, r in enumerate(returns) if r >= target)
    if medium in (0, len(returns) - 1) and len(returns) > 2:
        medium = min(max(medium, 1), len(returns) - 2)
    return {"random": 0, "medium": medium, "expert": len(returns) - 1}


def measure_references(env: TeamEnv, team_policy: Callable[[dict], Policy], checkpoints: list[tuple[int, dict]],
                       chosen: dict[str, int], episodes: int, seed: int) -> dict[str, dict]:
    """S_random and S_expert: the deterministic random and expert team policies' returns."""
    refs = {}
    for q in ("random", "expert"):
        r = evaluate(env, team_policy(checkpoints[chosen[q]][1]), episodes, seed + REFERENCE_SEED_OFFSET)
        refs[q] = {"mean": float(r.mean()), "std": float(r.std()), "episodes": int(len(r))}
    return refs
