"""Dataset collection: behaviour policies (with exploration noise, as OMAR's data) -> raw HDF5."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from . import data
from .behavior.checkpoints import undefined_score_reason
from .envs import make_team_env, spec_of
from .envs.base import team_reward
from .errors import ConfigError
from .jobs import COLLECTION_FORMAT
from .policies import BehaviorFileError, load_policies
from .rollout import run_episodes, stack_episodes

COLLECT_SEED_OFFSET = 30_000


def _read_summary(path: Path) -> dict:
    if not path.exists():
        raise BehaviorFileError(path, "does not exist (the behaviour stage has not finished there)")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BehaviorFileError(path, f"is not valid JSON ({e})") from None


def _read_replay(path: Path) -> dict[str, np.ndarray]:
    """The medium-replay transitions; every array is read here, so a damaged file fails now."""
    if not path.exists():
        raise BehaviorFileError(path, "does not exist")
    try:
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:   # zipfile.BadZipFile, EOFError, ValueError, zlib.error, ...: all mean damaged
        raise BehaviorFileError(path, f"cannot be read as a replay file (truncated or corrupted: "
                                      f"{type(e).__name__}: {e})") from None
    if "individual_rewards" not in arrays:
        raise BehaviorFileError(path, f"has no individual_rewards array (it has {', '.join(sorted(arrays))})")
    return arrays


def collect(job: dict, behavior_dir: str | Path, out_path: str | Path) -> dict:
    """Write the raw dataset of `job` (config.collect_job) from a finished behaviour folder."""
    if job["collection_format"] != COLLECTION_FORMAT:
        raise ConfigError("--job.collection_format", f"is {job['collection_format']}, this collector records format "
                          f"{COLLECTION_FORMAT}", "pass the job the `collect` rule (config.collect_job) writes now")
    behavior_dir = Path(behavior_dir)
    summary = _read_summary(behavior_dir / "summary.json")
    entry, quality, seed = job["env"], job["quality"], job["seed"]
    t0 = time.time()
    if quality == "medium-replay":   # the behaviour learner's replay buffer up to the medium checkpoint
        arrays = _read_replay(behavior_dir / "replay_medium.npz")
        arrays["team_rewards"] = team_reward(arrays["individual_rewards"])
        spec, env_steps_per_s = spec_of(entry), None
    else:
        team_policy, others = load_policies(behavior_dir / "policies.pt", quality)
        env = make_team_env(entry, job["num_envs"], others)
        spec = env.spec
        episodes = -(-job["transitions"] // spec.episode_limit)  # whole episodes, rounded up
        ep = run_episodes(env, team_policy, episodes, seed + COLLECT_SEED_OFFSET, noise=job["noise"], record=True)
        arrays = stack_episodes(ep)
        env_steps_per_s = len(arrays["team_rewards"]) / (time.time() - t0)
    returns = data.episode_returns(arrays["team_rewards"], arrays["episode_starts"])
    meta = {
        "env": entry["name"], "quality": quality, "seed": seed,
        "behavior_return": data.return_stats(returns),
        "S_random": summary["S_random"], "S_expert": summary["S_expert"],
        # None where normalised scores are defined; a behaviour folder from before the key existed is judged here
        "normalized_score_undefined": summary["normalized_score_undefined"] if "normalized_score_undefined" in summary
        else undefined_score_reason(summary["references"]),
        "behavior_checkpoint_env_steps": summary["checkpoint_env_steps"].get(quality, summary["checkpoint_env_steps"]["medium"]),
        "collection_noise": job["noise"] if quality != "medium-replay" else 0.0,
        "collection_format": COLLECTION_FORMAT,
        "env_config": entry,
    }
    data.write(out_path, arrays, spec, "raw", **meta)
    return {**meta, "transitions": int(len(arrays["team_rewards"])), "wall_s": round(time.time() - t0, 2),
            "env_steps_per_s": env_steps_per_s}
