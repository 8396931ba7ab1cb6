"""The online loop: K copies of the game stepped side by side, a behaviour learner
(registry.BEHAVIOR_LEARNERS, chosen by the job's `behavior.learner`) learning from what they
yield, a checkpoint (actor state, team return, win rate where the game reports one) at every
evaluation, and resume points.

A learner is built as Class(game, job) and offers
  explore(obs, avail, steps, rng) -> actions    the actions of one collection step (avail None: continuous)
  learn(run, step)                              after every step: the updates now due (`step`: the
                                                transition's columns, as added to `run.buf`)
  stacked_actor() -> AgentMLP                   the current actor over all agents (policies.pt's format)
  updates, state_dict(), load_state_dict()

At every checkpoint but the last, every episode still running is cut (recorded as a timeout) and
every env resets, so all episodes start there: a resume point is taken at such a checkpoint, and
a resumed run re-creates the exact env states from their episode seeds and ends as an
uninterrupted one. (MPE episodes are synchronised: with `eval_every` a multiple of
num_envs x 25 nothing is cut.)
"""
from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import numpy as np
import torch

from ..envs import make_team_env
from ..envs.base import Game
from ..config import check_learner_kind
from ..io import atomic_path, remove_partials
from ..policies import AgentLayout
from ..registry import BEHAVIOR_LEARNERS
from ..rollout import run_episodes
from .replay import Replay

CURVE_SEED_OFFSET = 20_000   # episode seeds of every checkpoint's evaluation (learning curve)


def learner_class(job: dict, game: Game) -> type:
    """The class of the job's behaviour learner, which must serve the game's action kind (config.check
    has checked a config's; a --job file is checked here)."""
    name = job["behavior"]["learner"]
    check_learner_kind(name, bool(game.discrete), "--job.behavior.learner", job["env"]["name"])
    return BEHAVIOR_LEARNERS[name].load()


class OnlineRun:
    """The job's behaviour learner over every agent of `game`. After `run()`: `checkpoints`
    [(env_steps, actor state)] and `curve` (one row per checkpoint) hold every evaluation; `buf`
    the replay; timings for the summary."""

    def __init__(self, job: dict, game: Game, out_dir: Path, progress: bool):
        self.job, self.hp, self.seed, self.entry = job, job["behavior"], job["seed"], job["env"]
        self.out_dir, self.progress = out_dir, progress
        self.rng = np.random.default_rng(self.seed)
        self.game, self.K = game, game.num_envs
        self.layout = AgentLayout.of(game, self.entry["team"])
        self.learner = learner_class(job, game)(game, job)
        n, O, A = len(game.agents), max(game.obs_dims), max(game.action_dims)
        self.buf = Replay(job["env_steps"] + self.K, n, O, A, bool(game.discrete), game.state_dim)
        self.checkpoints: list[tuple[int, dict]] = []
        self.curve: list[dict] = []
        self.eval_env = make_team_env(self.entry, min(self.K, job["eval_episodes"]),
                                      self.layout.others_policy(self.learner.stacked_actor()))
        self.resume_path = out_dir / "resume.pt"
        self.job_key = json.dumps(job, sort_keys=True)

    def _env_seed(self, episode: int) -> int:
        return self.seed * 7919 + int(episode)

    # ---- the loop ------------------------------------------------------------------------------
    def run(self) -> None:
        saved = self._saved_resume_point()
        if saved is None:
            self._start()
        else:
            self._restore(saved)
        self.last_save = time.time()
        remove_partials(self.out_dir)    # a killed predecessor's half-written resume point
        from tqdm import tqdm
        total, every = self.job["env_steps"], self.job["eval_every"]
        bar = tqdm(total=total, desc=f"behaviour {self.entry['name']}", unit="step", disable=not self.progress,
                   mininterval=5)
        while self.steps < total:
            after = self.steps + self.K
            checkpoint = after // every > self.steps // every or after >= total
            self._step(cut=checkpoint and after < total)
            bar.update(self.K)
            if checkpoint:
                self._snapshot()
                if self.steps < total and time.time() - self.last_save >= self.hp["checkpoint_every_s"]:
                    self._save_resume_point()
                    self.last_save = time.time()
        bar.close()
        self.wall_s = time.time() - self.t0

    def _step(self, cut: bool) -> None:
        """One step of every env, the learner's updates, resets of the envs whose episode ended
        (`cut`: every env, the running episodes recorded as timeouts)."""
        K, game = self.K, self.game
        avail = game.avail_actions()
        act = self.learner.explore(self.obs, avail, self.steps, self.rng)
        te = time.time()
        nobs, rew, term, trunc = game.step(act)
        self.env_time += time.time() - te
        if cut:
            trunc = trunc | ~term
        step = dict(obs=self.obs, actions=act, rewards=rew, next_obs=nobs, terminals=term, timeouts=trunc,
                    episode_ids=self.episode_ids, env_step=np.full(K, self.steps),
                    avail_actions=avail, next_avail_actions=game.avail_actions(),
                    state=self.state, next_state=game.state())
        self.buf.add(**step)
        self.steps += K
        tu = time.time()
        self.learner.learn(self, step)
        self.update_time += time.time() - tu
        self.obs = nobs.copy()
        for k in np.flatnonzero(term | trunc):
            self.obs[k] = game.reset_one(k, self._env_seed(self.next_episode))
            self.episode_ids[k] = self.next_episode
            self.next_episode += 1
        self.state = game.state()

    def _snapshot(self) -> None:
        """Checkpoint the actors; the team's return (and win rate) against the *current* opponents
        (the curve as it looked while learning)."""
        actor = self.learner.stacked_actor()
        self.checkpoints.append((self.steps, copy.deepcopy(actor.state_dict())))
        self.eval_env.others_policy = self.layout.others_policy(actor)
        ep = run_episodes(self.eval_env, self.layout.team_policy(actor), self.job["eval_episodes"],
                          self.seed + CURVE_SEED_OFFSET)
        row = {"env_steps": self.steps, "updates": self.learner.updates,
               "wall_s": round(time.time() - self.t0, 2), "return_during_training": float(np.mean(ep.returns))}
        if ep.win_rate is not None:
            row["win_rate_during_training"] = ep.win_rate
        self.curve.append(row)
        if not self.progress:  # one line per checkpoint for the rule's log
            won = f" win_rate={ep.win_rate:.2f}" if ep.win_rate is not None else ""
            print(f"env_steps={self.steps} updates={self.learner.updates} return={row['return_during_training']:.2f}"
                  f"{won} wall_s={row['wall_s']}", flush=True)

    # ---- start, resume point -------------------------------------------------------------------
    def _start(self) -> None:
        self.t0 = time.time()
        self.obs = self.game.reset([self._env_seed(k) for k in range(self.K)])
        self.state = self.game.state()
        self.episode_ids = np.arange(self.K)
        self.next_episode = self.K
        self.steps, self.env_time, self.update_time = 0, 0.0, 0.0
        self._snapshot()

    def _saved_resume_point(self) -> dict | None:
        if not self.resume_path.exists():
            return None
        try:
            saved = torch.load(self.resume_path, weights_only=False)
        except Exception as e:   # truncated or corrupted: a resume point is a cache, never a result
            print(f"{self.resume_path} cannot be read ({type(e).__name__}: {e}); starting over", flush=True)
            return None
        if not isinstance(saved, dict) or saved.get("job") != self.job_key:
            print(f"{self.resume_path}: made by a different job; starting over", flush=True)
            return None
        return saved

    def _restore(self, saved: dict) -> None:
        self.learner.load_state_dict(saved["learner"])
        self.buf.add(**saved["buffer"])
        self.checkpoints[:], self.curve[:] = saved["checkpoints"], saved["curve"]
        self.steps = saved["steps"]
        self.env_time, self.update_time = saved["env_time"], saved["update_time"]
        self.episode_ids, self.next_episode = saved["episode_ids"], saved["next_episode"]
        self.rng.bit_generator.state = saved["rng"]
        torch.set_rng_state(saved["torch_rng"])
        self.t0 = time.time() - saved["wall_s"]
        self.obs = self.game.reset([self._env_seed(e) for e in self.episode_ids])   # the episodes that start here
        self.state = self.game.state()
        print(f"resumed from {self.resume_path} at env_steps={self.steps}", flush=True)

    def _save_resume_point(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        state = {"job": self.job_key, "learner": self.learner.state_dict(), "buffer": self.buf.columns(),
                 "checkpoints": self.checkpoints, "curve": self.curve, "steps": self.steps,
                 "env_time": self.env_time, "update_time": self.update_time,
                 "episode_ids": self.episode_ids.copy(), "next_episode": self.next_episode,
                 "rng": self.rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                 "wall_s": time.time() - self.t0}
        with atomic_path(self.resume_path) as tmp:
            torch.save(state, tmp)

    def discard_resume_point(self) -> None:
        self.resume_path.unlink(missing_ok=True)
