"""Online MATD3 behaviour learner: the source of every offline dataset.

MATD3 (Ackermann et al. 2019) = MADDPG with TD3's fixes: per-agent deterministic actors, twin
centralised critics per agent (input: all agents' observations and actions), target policy
smoothing and delayed actor/target updates. It trains *all* agents of the task, each on its own
individual reward, so the opponents of PP/WORLD learn alongside the team; their final policy is
then frozen for everything downstream.

Outputs (one folder per env and behaviour seed):
  policies.pt        actors of every agent at three checkpoints: random (initialisation), medium
                     (first checkpoint whose return, against the final opponents, reaches half of
                     the way from random to expert), expert (final); plus the agent layout
  replay_medium.npz  the team's replay transitions collected up to the medium checkpoint
  curve.csv          learning curve: every checkpoint's team return, during training and against
                     the final (frozen) opponents
  summary.json       returns of random/medium/expert, S_random/S_expert references, speeds
"""
from __future__ import annotations

import copy
import csv
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .envs import make_game, make_team_env
from .io import atomic_path, remove_partials, versions, write_json
from .nets import AgentMLP, soft_update
from .rollout import actor_policy, evaluate

REFERENCE_SEED_OFFSET = 10_000   # references use episode seeds no training or offline evaluation uses
CURVE_SEED_OFFSET = 20_000


class MATD3:
    def __init__(self, obs_dims, action_dims, hp: dict, seed: int):
        torch.manual_seed(seed)
        self.n, self.O, self.A = len(obs_dims), max(obs_dims), max(action_dims)
        self.hp = hp
        mask = np.zeros((self.n, self.A), np.float32)
        for i, d in enumerate(action_dims):
            mask[i, :d] = 1
        self.action_mask = mask
        self.mask_t = torch.as_tensor(mask)
        joint = self.n * (self.O + self.A)
        self.actor = AgentMLP(self.n, self.O, hp["hidden"], self.A, out_act="tanh")
        self.q1 = AgentMLP(self.n, joint, hp["hidden"], 1)
        self.q2 = AgentMLP(self.n, joint, hp["hidden"], 1)
        self.actor_t, self.q1_t, self.q2_t = (copy.deepcopy(m) for m in (self.actor, self.q1, self.q2))
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=hp["actor_lr"])
        self.critic_opt = torch.optim.Adam([*self.q1.parameters(), *self.q2.parameters()], lr=hp["critic_lr"])
        self.updates = 0

    def state_dict(self) -> dict:
        nets = {k: getattr(self, k).state_dict() for k in ("actor", "q1", "q2", "actor_t", "q1_t", "q2_t",
                                                           "actor_opt", "critic_opt")}
        return {**nets, "updates": self.updates}

    def load_state_dict(self, d: dict) -> None:
        for k, v in d.items():
            if k == "updates":
                self.updates = v
            else:
                getattr(self, k).load_state_dict(v)

    def _pi(self, actor, obs):              # obs [B, N, O] -> actions [B, N, A]
        return (actor(obs.transpose(0, 1)) * self.mask_t[:, None]).transpose(0, 1)

    def _joint(self, obs, act):             # -> [N, B, N*(O+A)], the same input for every critic
        x = torch.cat([obs.flatten(1), act.flatten(1)], dim=1)
        return x.unsqueeze(0).expand(self.n, -1, -1)

    def update(self, b: dict) -> dict:
        hp = self.hp
        obs, act, rew, nobs, term = b["obs"], b["actions"], b["rewards"], b["next_obs"], b["terminals"]
        with torch.no_grad():
            noise = (torch.randn_like(act) * hp["policy_noise"]).clamp(-hp["noise_clip"], hp["noise_clip"])
            nact = ((self._pi(self.actor_t, nobs) + noise).clamp(-1, 1)) * self.mask_t
            xn = self._joint(nobs, nact)
            qn = torch.min(self.q1_t(xn), self.q2_t(xn)).squeeze(-1)          # [N, B]
            y = rew.T + hp["gamma"] * (1 - term)[None] * qn
        x = self._joint(obs, act)
        critic_loss = F.mse_loss(self.q1(x).squeeze(-1), y) + F.mse_loss(self.q2(x).squeeze(-1), y)
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()
        out = {"critic_loss": critic_loss.item()}
        self.updates += 1
        if self.updates % hp["policy_delay"] == 0:
            pi = self._pi(self.actor, obs)                                    # [B, N, A]
            eye = torch.eye(self.n, dtype=torch.bool)[:, None, :, None]       # agent i swaps in its own action
            joint_act = torch.where(eye, pi.unsqueeze(0), act.unsqueeze(0))   # [N, B, N, A]
            xa = torch.cat([obs.flatten(1).unsqueeze(0).expand(self.n, -1, -1), joint_act.flatten(2)], dim=2)
            actor_loss = -self.q1(xa).mean() * self.n + 1e-3 * (pi ** 2).mean()
            self.actor_opt.zero_grad(set_to_none=True)
            actor_loss.backward()
            self.actor_opt.step()
            for t, s in ((self.actor_t, self.actor), (self.q1_t, self.q1), (self.q2_t, self.q2)):
                soft_update(t, s, hp["tau"])
            out["actor_loss"] = actor_loss.item()
        return out


class Replay:
    """Transitions over all agents, with the env step at which each was collected."""

    def __init__(self, capacity: int, n: int, O: int, A: int):
        self.obs = np.zeros((capacity, n, O), np.float32)
        self.next_obs = np.zeros_like(self.obs)
        self.actions = np.zeros((capacity, n, A), np.float32)
        self.rewards = np.zeros((capacity, n), np.float32)
        self.terminals = np.zeros(capacity, bool)
        self.timeouts = np.zeros(capacity, bool)
        self.episode_ids = np.zeros(capacity, np.int64)
        self.env_step = np.zeros(capacity, np.int64)
        self.size = 0

    def add(self, **cols):
        k = len(cols["obs"])
        sl = slice(self.size, self.size + k)
        for name, v in cols.items():
            getattr(self, name)[sl] = v
        self.size += k

    def columns(self) -> dict:
        return {name: getattr(self, name)[: self.size].copy() for name in
                ("obs", "next_obs", "actions", "rewards", "terminals", "timeouts", "episode_ids", "env_step")}

    def sample(self, rng: np.random.Generator, batch: int) -> dict:
        idx = rng.integers(0, self.size, batch)
        t = lambda a: torch.as_tensor(a[idx])
        return {"obs": t(self.obs), "actions": t(self.actions), "rewards": t(self.rewards),
                "next_obs": t(self.next_obs), "terminals": t(self.terminals).float()}


def _team_episodes_upto(buf: Replay, upto_step: int, team_idx: list[int], obs_dims) -> dict[str, np.ndarray]:
    """The team's view of replay transitions collected before `upto_step`, episodes contiguous."""
    sel = np.flatnonzero(buf.env_step[: buf.size] < upto_step)
    sel = sel[np.argsort(buf.episode_ids[sel], kind="stable")]
    obs, nobs = buf.obs[sel][:, team_idx], buf.next_obs[sel][:, team_idx]
    Omax = max(obs_dims)
    obs, nobs = obs[..., :Omax], nobs[..., :Omax]
    state = lambda o: np.concatenate([o[:, i, :d] for i, d in enumerate(obs_dims)], axis=1)
    eps = buf.episode_ids[sel]
    starts = np.ones(len(sel), bool)
    starts[1:] = eps[1:] != eps[:-1]
    return {"obs": obs, "next_obs": nobs, "actions": buf.actions[sel][:, team_idx],
            "individual_rewards": buf.rewards[sel][:, team_idx], "state": state(obs), "next_state": state(nobs),
            "terminals": buf.terminals[sel], "timeouts": buf.timeouts[sel], "episode_starts": starts}


def train(job: dict, out_dir: str | Path, progress: bool = True, threads: int | None = None) -> dict:
    """Run MATD3 for the job made by config.behavior_job and write the folder described above."""
    out_dir = Path(out_dir)
    entry, hp, seed = job["env"], job["behavior"], job["seed"]
    if threads:  # as many as the scheduler gave the job: oversubscribed torch threads thrash
        torch.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    K = hp["num_envs"]
    game = make_game(entry, K)
    agents = game.agents
    team_idx = [agents.index(a) for a in entry["team"]]
    other_idx = [i for i in range(len(agents)) if i not in team_idx]
    learner = MATD3(game.obs_dims, game.action_dims, hp, seed)
    n, A = learner.n, learner.A
    total, start = job["env_steps"], job["start_steps"]
    buf = Replay(total + K, n, learner.O, A)

    checkpoints: list[tuple[int, dict]] = []       # (env_steps, actor state) at every evaluation
    curve = []
    eval_env = make_team_env(entry, min(K, job["eval_episodes"]), None if not other_idx else
                             actor_policy(learner.actor.subset(other_idx), learner.action_mask[other_idx]))

    def snapshot(steps: int):
        checkpoints.append((steps, copy.deepcopy(learner.actor.state_dict())))
        # team return against the *current* opponents (the curve as it looked while learning)
        eval_env.others_policy = (actor_policy(learner.actor.subset(other_idx), learner.action_mask[other_idx])
                                  if other_idx else None)
        r = evaluate(eval_env, actor_policy(learner.actor.subset(team_idx), learner.action_mask[team_idx]),
                     job["eval_episodes"], seed + CURVE_SEED_OFFSET)
        curve.append({"env_steps": steps, "updates": learner.updates, "wall_s": round(time.time() - t0, 2),
                      "return_during_training": float(r.mean())})
        if not progress:  # one line per checkpoint for the rule's log
            print(f"env_steps={steps} updates={learner.updates} return={r.mean():.2f} wall_s={curve[-1]['wall_s']}",
                  flush=True)

    # Resume point: taken right after every env has reset (MPE episodes are synchronised), so a
    # resumed run re-creates the exact env states from their seeds and ends as an uninterrupted one.
    resume_path = out_dir / "resume.pt"
    job_key = json.dumps(job, sort_keys=True)
    saved = torch.load(resume_path, weights_only=False) if resume_path.exists() else None
    if saved is not None and saved["job"] != job_key:
        print(f"{resume_path}: made by a different job; starting over", flush=True)
        saved = None
    if saved is None:
        t0 = time.time()
        obs = game.reset([seed * 7919 + k for k in range(K)])
        episode_ids = np.arange(K)
        next_episode = K
        steps, due_updates, env_time, update_time = 0, 0.0, 0.0, 0.0
        snapshot(0)
    else:
        learner.load_state_dict(saved["learner"])
        buf.add(**saved["buffer"])
        checkpoints[:], curve[:] = saved["checkpoints"], saved["curve"]
        steps, due_updates, env_time, update_time = saved["steps"], saved["due_updates"], saved["env_time"], saved["update_time"]
        episode_ids, next_episode = saved["episode_ids"], saved["next_episode"]
        rng.bit_generator.state = saved["rng"]
        torch.set_rng_state(saved["torch_rng"])
        t0 = time.time() - saved["wall_s"]
        obs = np.stack([game.reset_one(k, seed * 7919 + int(e)) for k, e in enumerate(episode_ids)])
        print(f"resumed from {resume_path} at env_steps={steps}", flush=True)
    last_save = time.time()
    remove_partials(out_dir)    # a killed predecessor's half-written resume point

    def save_resume_point():
        out_dir.mkdir(parents=True, exist_ok=True)
        state = {"job": job_key, "learner": learner.state_dict(), "buffer": buf.columns(), "checkpoints": checkpoints,
                 "curve": curve, "steps": steps, "due_updates": due_updates, "env_time": env_time,
                 "update_time": update_time, "episode_ids": episode_ids.copy(), "next_episode": next_episode,
                 "rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(), "wall_s": time.time() - t0}
        with atomic_path(resume_path) as tmp:
            torch.save(state, tmp)

    from tqdm import tqdm
    bar = tqdm(total=total, desc=f"behaviour {entry['name']}", unit="step", disable=not progress, mininterval=5)
    while steps < total:
        if steps < start:
            act = rng.uniform(-1, 1, (K, n, A)).astype(np.float32)
        else:
            act = actor_policy(learner.actor, learner.action_mask)(obs)
            act = np.clip(act + hp["exploration_noise"] * rng.standard_normal(act.shape), -1, 1)
        act = (act * learner.action_mask).astype(np.float32)
        te = time.time()
        nobs, rew, term, trunc = game.step(act)
        env_time += time.time() - te
        buf.add(obs=obs, actions=act, rewards=rew, next_obs=nobs, terminals=term, timeouts=trunc,
                episode_ids=episode_ids, env_step=np.full(K, steps))
        obs = nobs
        for k in np.flatnonzero(term | trunc):
            obs[k] = game.reset_one(k, seed * 7919 + next_episode)
            episode_ids[k] = next_episode
            next_episode += 1
        prev, steps = steps, steps + K
        bar.update(K)
        if steps >= start:
            due_updates += K / job["update_every"]
            tu = time.time()
            while due_updates >= 1 and buf.size >= hp["batch_size"]:
                learner.update(buf.sample(rng, hp["batch_size"]))
                due_updates -= 1
            update_time += time.time() - tu
        if steps // job["eval_every"] > prev // job["eval_every"] or steps >= total:
            snapshot(steps)
            if (term | trunc).all() and steps < total and time.time() - last_save >= hp["checkpoint_every_s"]:
                save_resume_point()
                last_save = time.time()
    bar.close()
    train_wall = time.time() - t0

    # Freeze the opponents at their final policy and measure every checkpoint against them.
    final_actor = learner.actor
    others = actor_policy(final_actor.subset(other_idx), learner.action_mask[other_idx]) if other_idx else None
    ref_env = make_team_env(entry, K, others)
    team_mask = learner.action_mask[team_idx]

    def team_policy(state_dict):
        a = copy.deepcopy(learner.actor)
        a.load_state_dict(state_dict)
        return actor_policy(a.subset(team_idx), team_mask)

    for (s, sd), row in zip(checkpoints, curve):
        row["return_vs_final_opponents"] = float(evaluate(ref_env, team_policy(sd), job["eval_episodes"],
                                                          seed + CURVE_SEED_OFFSET).mean())
    r_random, r_expert = curve[0]["return_vs_final_opponents"], curve[-1]["return_vs_final_opponents"]
    target = r_random + 0.5 * (r_expert - r_random)
    medium_i = next(i for i, row in enumerate(curve) if row["return_vs_final_opponents"] >= target)
    if medium_i in (0, len(curve) - 1) and len(curve) > 2:
        medium_i = min(max(medium_i, 1), len(curve) - 2)  # medium must differ from random and expert
    chosen = {"random": 0, "medium": medium_i, "expert": len(curve) - 1}

    refs = {}
    for q in ("random", "expert"):
        r = evaluate(ref_env, team_policy(checkpoints[chosen[q]][1]), job["reference_episodes"],
                     seed + REFERENCE_SEED_OFFSET)
        refs[q] = {"mean": float(r.mean()), "std": float(r.std()), "episodes": int(len(r))}

    out_dir.mkdir(parents=True, exist_ok=True)
    medium_step = checkpoints[medium_i][0]
    replay = _team_episodes_upto(buf, medium_step, team_idx, [game.obs_dims[i] for i in team_idx])
    with atomic_path(out_dir / "replay_medium.npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **replay)
    with atomic_path(out_dir / "curve.csv") as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(curve[0]))
            w.writeheader()
            w.writerows(curve)
    summary = {
        "env": entry["name"], "seed": seed, "agents": agents, "team": entry["team"],
        "checkpoint_env_steps": {q: checkpoints[i][0] for q, i in chosen.items()},
        "checkpoint_return": {q: curve[i]["return_vs_final_opponents"] for q, i in chosen.items()},
        "S_random": refs["random"]["mean"], "S_expert": refs["expert"]["mean"], "references": refs,
        "replay_medium_transitions": int(len(replay["obs"])),
        "env_steps": steps, "updates": learner.updates, "wall_s": round(train_wall, 1),
        "env_steps_per_s": round(steps / max(env_time, 1e-9), 1),
        "updates_per_s": round(learner.updates / max(update_time, 1e-9), 1),
        "versions": versions(),
    }
    torch_save = {"agents": agents, "obs_dims": game.obs_dims, "action_dims": game.action_dims,
                  "hidden": hp["hidden"], "team": entry["team"], "env": entry,
                  "actors": {q: checkpoints[i][1] for q, i in chosen.items()}}
    with atomic_path(out_dir / "policies.pt") as tmp:
        torch.save(torch_save, tmp)
    write_json(out_dir / "summary.json", summary)   # written last: its presence means the folder is whole
    resume_path.unlink(missing_ok=True)
    return summary


def load_policies(path: str | Path, quality: str):
    """(team policy of `quality`, frozen opponents' policy or None, spec-free agent layout)."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    agents, team = ckpt["agents"], ckpt["team"]
    n, O, A = len(agents), max(ckpt["obs_dims"]), max(ckpt["action_dims"])
    mask = np.zeros((n, A), np.float32)
    for i, d in enumerate(ckpt["action_dims"]):
        mask[i, :d] = 1

    def actors(q):
        m = AgentMLP(n, O, ckpt["hidden"], A, out_act="tanh")
        m.load_state_dict(ckpt["actors"][q])
        return m
    team_idx = [agents.index(a) for a in team]
    other_idx = [i for i in range(n) if i not in team_idx]
    team_policy = actor_policy(actors(quality).subset(team_idx), mask[team_idx])
    others = actor_policy(actors("expert").subset(other_idx), mask[other_idx]) if other_idx else None
    return team_policy, others
