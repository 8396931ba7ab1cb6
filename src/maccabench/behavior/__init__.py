"""Online behaviour learning: the source of every offline dataset.

The learner comes from registry.BEHAVIOR_LEARNERS by the env's action kind (config
`behavior.learner`, per suite or env): MATD3 for continuous games trains *all* agents of the task,
each on its own individual reward, so the opponents of PP/WORLD learn alongside the team (their
final policy is then frozen for everything downstream); IPPO for discrete ones (SMAX) trains the
team, whose enemies are the game's own heuristic, on the team reward.

Outputs (one folder per env and behaviour seed):
  policies.pt        actors of every agent at three checkpoints: random (initialisation), medium
                     (checkpoints.py: the first checkpoint whose return, against the final
                     opponents, reaches half of the way from random to expert; on games with wins,
                     the first whose win rate reaches a third of the expert's), expert (final);
                     plus the agent layout (written and read by maccabench.policies)
  replay_medium.npz  the team's replay transitions collected up to the medium checkpoint
  curve.csv          learning curve: every checkpoint's team return (and win rate), during
                     training and against the final (frozen) opponents
  summary.json       returns of random/medium/expert, S_random/S_expert references, speeds

Modules: `matd3`, `ippo` (the learners), `replay` (the buffer), `online` (the loop, resume points),
`checkpoints` (medium choice, references), `folder` (writing the outputs).
"""
from __future__ import annotations

import copy
from pathlib import Path

import torch

from ..envs import make_game, spec_of
from .checkpoints import choose_checkpoints, measure_references, measure_vs_final_opponents
from .folder import write_folder
from .online import OnlineRun


def train(job: dict, out_dir: str | Path, progress: bool = True, threads: int | None = None) -> dict:
    """Run the behaviour learner of the job made by config.behavior_job and write the folder described above."""
    out_dir = Path(out_dir)
    if threads:  # as many as the scheduler gave the job: oversubscribed torch threads thrash
        torch.set_num_threads(threads)
    entry = job["env"]
    run = OnlineRun(job, make_game(entry, job["behavior"]["num_envs"]), out_dir, progress)
    run.run()

    # Freeze the opponents at their final policy and measure every checkpoint against them.
    final_actor, layout = copy.deepcopy(run.learner.stacked_actor()), run.layout
    # the curve's evaluation env, min(num_envs, eval_episodes) copies (each episode's seed, not the copy
    # it runs on, decides it): building a game again costs ~10 s of jax tracing on SMAX
    ref_env = run.eval_env
    ref_env.others_policy = layout.others_policy(final_actor)

    def team_policy(state_dict):
        a = copy.deepcopy(final_actor)
        a.load_state_dict(state_dict)
        return layout.team_policy(a)

    returns, win_rates = measure_vs_final_opponents(ref_env, team_policy, run.checkpoints, job["eval_episodes"],
                                                    run.seed)
    for i, row in enumerate(run.curve):
        row["return_vs_final_opponents"] = returns[i]
        if win_rates is not None:
            row["win_rate_vs_final_opponents"] = win_rates[i]
    chosen = choose_checkpoints(returns, win_rates)
    refs = measure_references(ref_env, team_policy, run.checkpoints, chosen, job["reference_episodes"], run.seed)
    medium_step = run.checkpoints[chosen["medium"]][0]
    replay = run.buf.team_episodes_upto(medium_step, spec_of(entry, run.game), layout.team_idx)
    summary = write_folder(out_dir, run, chosen, refs, replay)
    run.discard_resume_point()
    return summary
