"""Import SMAC datasets in CFCQL's HDF5 layout (the files the MACCA paper trained on) as our
team-reward datasets (maccabench.data).

CFCQL (Shao et al. 2023, github.com/thu-rllab/CFCQL) saves pymarl episode batches: one array per
key, episodes padded to the map's episode limit + 1 slots,
  state [E, L+1, S], obs [E, L+1, N, O], actions [E, L+1, N, 1] (integers),
  avail_actions [E, L+1, N, A], reward [E, L+1, 1], terminated [E, L+1, 1], filled [E, L+1, 1],
  and `probs` (the behaviour policy's action probabilities), which our format does not keep.
Slot t of a filled episode holds the step before action t; slot t+1 holds the next step, so an
episode with k filled slots has k - 1 transitions, cut after its first terminated one. Its last
transition is a timeout where it is not terminated (SMAC's episode limit).

The files hold the team reward only (there are no individual rewards to mask), and no reference
policies were run, so S_random / S_expert are NaN and normalised scores undefined: SMAC tables
report win rates. The spec is the config entry's (env, suite, task, agents) with the file's sizes;
where StarCraft II runs, training compares it with the real game's (data.read's spec check).
"""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from . import data
from .envs.base import EnvSpec
from .errors import DatasetError
from .runfolder import SCORE_UNDEFINED

KEYS = ("state", "obs", "actions", "avail_actions", "reward", "terminated", "filled")
FORMAT = "cfcql-hdf5"
UNMODIFIED = "pass an unmodified CFCQL file of the env entry's map"


def _read(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DatasetError(path, "does not exist", "pass the path of a CFCQL .h5 file (e.g. 2s3z_expert.h5)")
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in KEYS if k not in f]
            if missing:
                raise DatasetError(path, f"lacks the CFCQL keys {', '.join(missing)} (it has {', '.join(sorted(f))})",
                                   "pass a file CFCQL wrote (pymarl episode batches with `filled`)")
            return {k: f[k][()] for k in KEYS}
    except OSError as e:
        raise DatasetError(path, f"cannot be read as HDF5: {e}", UNMODIFIED) from None


def _check_shapes(path: Path, a: dict[str, np.ndarray], n_agents: int) -> None:
    E, L1 = a["filled"].shape[:2]
    expected = {"state": 3, "obs": 4, "avail_actions": 4, "reward": 3, "terminated": 3, "filled": 3}
    for k, ndim in expected.items():
        if a[k].ndim != ndim or a[k].shape[:2] != (E, L1):
            raise DatasetError(path, f"`{k}` has shape {a[k].shape}, expected {ndim} axes starting {(E, L1)}",
                               UNMODIFIED)
    if a["obs"].shape[2] != n_agents:
        raise DatasetError(path, f"has {a['obs'].shape[2]} agents, the env entry's team has {n_agents}",
                           "import it with the env entry of its map (e.g. --env smac-2s3z for 2s3z_*.h5)")
    if a["actions"].shape[:3] != (E, L1, n_agents) or a["actions"].ndim not in (3, 4):
        raise DatasetError(path, f"`actions` has shape {a['actions'].shape}, expected {(E, L1, n_agents, 1)}",
                           UNMODIFIED)


def episode_lengths(filled: np.ndarray, terminated: np.ndarray) -> np.ndarray:
    """Transitions per episode: filled slots - 1, cut after the first terminated transition."""
    filled, terminated = filled.reshape(len(filled), -1).astype(bool), terminated.reshape(len(terminated), -1).astype(bool)
    n_filled = filled.sum(1)
    gaps = (filled != (np.arange(filled.shape[1]) < n_filled[:, None])).any(1)
    if gaps.any():
        raise ValueError(f"episode {int(np.flatnonzero(gaps)[0])}'s filled slots are not a prefix of the episode")
    lengths = np.maximum(n_filled - 1, 0)
    first_term = np.where(terminated.any(1), terminated.argmax(1) + 1, terminated.shape[1])
    return np.minimum(lengths, first_term)


def convert(path: str | Path, entry: dict) -> tuple[dict[str, np.ndarray], EnvSpec, np.ndarray]:
    """CFCQL arrays -> (our team-dataset arrays, their spec, (episode, slot) of every transition)."""
    path = Path(path)
    a = _read(path)
    N = len(entry["team"])
    _check_shapes(path, a, N)
    try:
        lengths = episode_lengths(a["filled"], a["terminated"])
    except ValueError as e:
        raise DatasetError(path, str(e), UNMODIFIED) from None
    if not lengths.sum():
        raise DatasetError(path, "holds no transitions (no episode has two filled slots)", UNMODIFIED)
    ep = np.repeat(np.arange(len(lengths)), lengths)                          # episode of each transition
    t = np.arange(len(ep)) - np.repeat(np.cumsum(lengths) - lengths, lengths)   # its slot in the episode
    actions = a["actions"].reshape(a["actions"].shape[:3])
    terminals = a["terminated"][ep, t, 0].astype(bool)
    last = np.append(t[1:] == 0, True)                                        # an episode's last transition
    arrays = {
        "obs": a["obs"][ep, t].astype(np.float32), "next_obs": a["obs"][ep, t + 1].astype(np.float32),
        "state": a["state"][ep, t].astype(np.float32), "next_state": a["state"][ep, t + 1].astype(np.float32),
        "actions": actions[ep, t].astype(np.int64),
        "avail_actions": a["avail_actions"][ep, t].astype(bool),
        "next_avail_actions": a["avail_actions"][ep, t + 1].astype(bool),
        "team_rewards": a["reward"][ep, t, 0].astype(np.float32),
        "terminals": terminals.astype(np.float32), "timeouts": (last & ~terminals).astype(np.float32),
        "episode_starts": t == 0,
    }
    L1 = a["filled"].shape[1]
    spec = EnvSpec(env=entry["name"], suite=entry["suite"], task=entry["task"], agents=tuple(entry["team"]),
                   obs_dims=(a["obs"].shape[-1],) * N, action_dims=(a["avail_actions"].shape[-1],) * N,
                   state_dim=a["state"].shape[-1], discrete=True, episode_limit=L1 - 1)
    return arrays, spec, np.stack([ep, t], 1)


def import_file(path: str | Path, out: str | Path, entry: dict, quality: str, seed: int) -> data.Dataset:
    """Write CFCQL file `path` as our team dataset `out` (atomically) and return it as read back."""
    arrays, spec, origin = convert(path, entry)
    problem = data.action_problem(arrays, spec, step_name=lambda r: f"episode {origin[r, 0]} step {origin[r, 1]}")
    if problem:
        raise DatasetError(Path(path), problem, "the file is damaged or belongs to another map; use another file")
    returns = data.episode_returns(arrays["team_rewards"], arrays["episode_starts"])
    data.write(out, arrays, spec, "team", env=entry["name"], quality=quality, seed=seed,
               behavior_return=data.return_stats(returns), S_random=float("nan"), S_expert=float("nan"),
               **{SCORE_UNDEFINED: "imported from a CFCQL file: no reference policies were run; SMAC tables "
                                   "report win rates"},
               source=str(Path(path).name), source_format=FORMAT, env_config=entry)
    return data.read(out, kind="team", spec=spec)
