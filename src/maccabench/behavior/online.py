"""The online loop: K copies of the game stepped side by side, MATD3 learning from the replay,
a checkpoint (actor state, team return) at every evaluation, and resume points.

A resume point is taken right after every env has reset (MPE episodes are synchronised), so a
resumed run re-creates the exact env states from their seeds and ends as an uninterrupted one.
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
from ..io import atomic_path, remove_partials
from ..policies import AgentLayout
from ..rollout import actor_policy, evaluate
from .matd3 import MATD3
from .replay import Replay

CURVE_SEED_OFFSET = 20_000   # episode seeds of every checkpoint's evaluation (learning curve)


class OnlineRun:
    """MATD3 over every agent of `game`, each on its own individual reward (the opponents learn
    alongside the team). After `run()`: `checkpoints` [(env_steps, actor state)] and `curve`
    (one row per checkpoint) hold every evaluation; `buf` the replay; timings for the summary."""

    def __init__(self, job: dict, game: Game, out_dir: Path, progress: bool):
        self.job, self.hp, self.seed, self.entry = job, job["behavior"], job["seed"], job["env"]
        self.out_dir, self.progress = out_dir, progress
        self.rng = np.random.default_rng(self.seed)
        self.game, self.K = game, game.num_envs
        self.layout = AgentLayout.of(game, self.entry["team"])
        self.learner = MATD3(game.obs_dims, game.action_dims, self.hp, self.seed)
        self.buf = Replay(job["env_steps"] + self.K, self.learner.n, self.learner.O, self.learner.A)
        self.checkpoints: list[tuple[int, dict]] = []
        self.curve: list[dict] = []
        self.eval_env = make_team_env(self.entry, min(self.K, job["eval_episodes"]),
                                      self.layout.others_policy(self.learner.actor))
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
            prev = self.steps
            done = self._collect_step()
            bar.update(self.K)
            self._learn()
            if self.steps // every > prev // every or self.steps >= total:
                self._snapshot()
                if done.all() and self.steps < total and time.time() - self.last_save >= self.hp["checkpoint_every_s"]:
                    self._save_resume_point()
                    self.last_save = time.time()
        bar.close()
        self.wall_s = time.time() - self.t0

    def _collect_step(self) -> np.ndarray:
        """One step of every env (uniform random actions before `start_steps`); -> episode ended [K]."""
        K, learner, hp = self.K, self.learner, self.hp
        if self.steps < self.job["start_steps"]:
            act = self.rng.uniform(-1, 1, (K, learner.n, learner.A)).astype(np.float32)
        else:
            act = actor_policy(learner.actor, learner.action_mask)(self.obs)
            act = np.clip(act + hp["exploration_noise"] * self.rng.standard_normal(act.shape), -1, 1)
        act = (act * learner.action_mask).astype(np.float32)
        te = time.time()
        nobs, rew, term, trunc = self.game.step(act)
        self.env_time += time.time() - te
        self.buf.add(obs=self.obs, actions=act, rewards=rew, next_obs=nobs, terminals=term, timeouts=trunc,
                     episode_ids=self.episode_ids, env_step=np.full(K, self.steps))
        self.obs = nobs
        for k in np.flatnonzero(term | trunc):
            self.obs[k] = self.game.reset_one(k, self._env_seed(self.next_episode))
            self.episode_ids[k] = self.next_episode
            self.next_episode += 1
        self.steps += K
        return term | trunc

    def _learn(self) -> None:
        """The updates due after `start_steps`: one per `update_every` env steps."""
        if self.steps < self.job["start_steps"]:
            return
        self.due_updates += self.K / self.job["update_every"]
        tu = time.time()
        while self.due_updates >= 1 and self.buf.size >= self.hp["batch_size"]:
            self.learner.update(self.buf.sample(self.rng, self.hp["batch_size"]))
            self.due_updates -= 1
        self.update_time += time.time() - tu

    def _snapshot(self) -> None:
        """Checkpoint the actors; the team's return against the *current* opponents (the curve as
        it looked while learning)."""
        learner = self.learner
        self.checkpoints.append((self.steps, copy.deepcopy(learner.actor.state_dict())))
        self.eval_env.others_policy = self.layout.others_policy(learner.actor)
        r = evaluate(self.eval_env, self.layout.team_policy(learner.actor), self.job["eval_episodes"],
                     self.seed + CURVE_SEED_OFFSET)
        self.curve.append({"env_steps": self.steps, "updates": learner.updates,
                           "wall_s": round(time.time() - self.t0, 2), "return_during_training": float(r.mean())})
        if not self.progress:  # one line per checkpoint for the rule's log
            print(f"env_steps={self.steps} updates={learner.updates} return={r.mean():.2f} "
                  f"wall_s={self.curve[-1]['wall_s']}", flush=True)

    # ---- start, resume point -------------------------------------------------------------------
    def _start(self) -> None:
        self.t0 = time.time()
        self.obs = self.game.reset([self._env_seed(k) for k in range(self.K)])
        self.episode_ids = np.arange(self.K)
        self.next_episode = self.K
        self.steps, self.due_updates, self.env_time, self.update_time = 0, 0.0, 0.0, 0.0
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
        self.steps, self.due_updates = saved["steps"], saved["due_updates"]
        self.env_time, self.update_time = saved["env_time"], saved["update_time"]
        self.episode_ids, self.next_episode = saved["episode_ids"], saved["next_episode"]
        self.rng.bit_generator.state = saved["rng"]
        torch.set_rng_state(saved["torch_rng"])
        self.t0 = time.time() - saved["wall_s"]
        self.obs = np.stack([self.game.reset_one(k, self._env_seed(e)) for k, e in enumerate(self.episode_ids)])
        print(f"resumed from {self.resume_path} at env_steps={self.steps}", flush=True)

    def _save_resume_point(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        state = {"job": self.job_key, "learner": self.learner.state_dict(), "buffer": self.buf.columns(),
                 "checkpoints": self.checkpoints, "curve": self.curve, "steps": self.steps,
                 "due_updates": self.due_updates, "env_time": self.env_time, "update_time": self.update_time,
                 "episode_ids": self.episode_ids.copy(), "next_episode": self.next_episode,
                 "rng": self.rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                 "wall_s": time.time() - self.t0}
        with atomic_path(self.resume_path) as tmp:
            torch.save(state, tmp)

    def discard_resume_point(self) -> None:
        self.resume_path.unlink(missing_ok=True)
