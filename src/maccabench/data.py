"""Offline datasets: one self-describing HDF5 file per (env, quality, dataset seed).

Arrays (T transitions, N team agents, padded to the widest agent; true sizes are in the spec):
  obs, next_obs [T,N,O]; actions [T,N,A] float32 in [-1, 1] (continuous specs) or [T,N] int64
  (discrete specs); state, next_state [T,S]; terminals, timeouts [T];
  team_rewards [T]; episode_starts [T] (True at the first step of each episode);
  discrete specs only: avail_actions, next_avail_actions bool [T,N,A] (the actions each agent
  could take at the step and at the next one); every action taken is an available one;
  individual_rewards [T,N] in *raw* files only.
Attributes: kind (raw|team), spec (EnvSpec JSON), quality, seed, behaviour-return statistics,
S_random / S_expert, versions, and `checksum`: SHA-256 over every array's name, dtype, shape and
bytes. Readers verify the checksum, the spec and (discrete) that every action taken was
available, and name the file (and the first bad step) when any is wrong.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from .envs.base import EnvSpec, require_same_spec, team_reward
from .errors import DatasetError
from .io import atomic_path, versions

RAW_ONLY = ("individual_rewards",)
REQUIRED = ("obs", "next_obs", "actions", "state", "next_state", "terminals", "timeouts",
            "team_rewards", "episode_starts")
DISCRETE_ONLY = ("avail_actions", "next_avail_actions")


def required_arrays(spec: EnvSpec) -> tuple[str, ...]:
    return REQUIRED + DISCRETE_ONLY if spec.discrete else REQUIRED


def action_problem(arrays: dict[str, np.ndarray], spec: EnvSpec, step_name=lambda t: f"step {t}") -> str | None:
    """What is wrong with a discrete dataset's actions (integers, shaped [T,N], each among the
    agent's available actions at its step), or None. Continuous datasets: None. `step_name(t)`
    names row t in the message (an importer names the source file's episode and step)."""
    if not spec.discrete:
        return None
    act, avail = arrays["actions"], arrays["avail_actions"]
    T, N, A = len(act), spec.n_agents, spec.action_dim
    if not np.issubdtype(act.dtype, np.integer) or act.shape != (T, N):
        return f"actions are {act.dtype} {act.shape}, a discrete env needs integers of shape {(T, N)}"
    for name in DISCRETE_ONLY:
        a = arrays[name]
        if a.dtype != np.bool_ or a.shape != (T, N, A):
            return f"{name} is {a.dtype} {a.shape}, expected bool {(T, N, A)}"
    taken = np.take_along_axis(avail, np.clip(act, 0, A - 1)[..., None], -1)[..., 0] & (act >= 0) & (act < A)
    if taken.all():
        return None
    t, i = np.argwhere(~taken)[0]
    return (f"{step_name(t)}, agent {spec.agents[i]} took action {act[t, i]}, which was not available "
            f"(available: {np.flatnonzero(avail[t, i]).tolist()}); {int((~taken).sum())} such actions in all")


def checksum(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


@dataclass
class Dataset:
    path: Path
    arrays: dict[str, np.ndarray]
    attrs: dict
    spec: EnvSpec

    @property
    def kind(self) -> str:
        return self.attrs["kind"]

    def __len__(self) -> int:
        return len(self.arrays["team_rewards"])


def write(path: str | Path, arrays: dict[str, np.ndarray], spec: EnvSpec, kind: str, **attrs) -> None:
    """Atomically write a dataset; `attrs` must be JSON-serialisable."""
    missing = [k for k in required_arrays(spec) if k not in arrays]
    if missing:
        raise ValueError(f"dataset arrays missing: {missing}")
    problem = action_problem(arrays, spec)
    if problem:
        raise ValueError(f"dataset for {spec.env}: {problem}")
    if kind == "team" and any(k in arrays for k in RAW_ONLY):
        raise ValueError("a team dataset must not contain individual rewards")
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            for name, a in arrays.items():
                f.create_dataset(name, data=a)
            f.attrs["kind"] = kind
            f.attrs["spec"] = spec.to_json()
            f.attrs["versions"] = json.dumps(versions())
            f.attrs["n_transitions"] = len(arrays["team_rewards"])
            for k, v in attrs.items():
                f.attrs[k] = json.dumps(v)
            f.attrs["checksum"] = checksum(arrays)


def read(path: str | Path, *, kind: str | None = None, spec: EnvSpec | None = None) -> Dataset:
    """Read and verify a dataset. `kind`/`spec`, when given, must match the file."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(path, "does not exist", "run the pipeline stage that makes it (snakemake datasets)")
    try:
        with h5py.File(path, "r") as f:
            arrays = {name: f[name][()] for name in f.keys()}
            raw_attrs = dict(f.attrs)
    except (OSError, KeyError, ValueError) as e:
        raise DatasetError(path, f"cannot be read as HDF5 (truncated or corrupted): {e}") from None
    if "checksum" not in raw_attrs or "spec" not in raw_attrs:
        raise DatasetError(path, "has no checksum/spec attributes: not a maccabench dataset or written incompletely")
    if checksum(arrays) != raw_attrs["checksum"]:
        raise DatasetError(path, "checksum mismatch: the arrays were altered or corrupted after writing")
    attrs = {}
    for k, v in raw_attrs.items():
        if k in ("kind", "spec", "checksum"):
            attrs[k] = str(v)
        elif isinstance(v, (str, bytes)):
            try:
                attrs[k] = json.loads(v)
            except json.JSONDecodeError:
                attrs[k] = v
        else:
            attrs[k] = v.item() if hasattr(v, "item") else v
    file_spec = EnvSpec.from_json(attrs["spec"])
    if kind is not None and attrs["kind"] != kind:
        raise DatasetError(path, f"is a {attrs['kind']!r} dataset where a {kind!r} one is needed",
                           "pass the datasets/team/... file to offline learners (raw files are for evaluation only)")
    if kind == "team" and any(k in arrays for k in RAW_ONLY):
        raise DatasetError(path, "is marked team but holds individual rewards")
    if spec is not None:
        require_same_spec(spec, file_spec, f"dataset {path}")
    missing = [k for k in required_arrays(file_spec) if k not in arrays]
    if missing:
        raise DatasetError(path, f"lacks the arrays {', '.join(missing)}")
    problem = action_problem(arrays, file_spec)
    if problem:
        raise DatasetError(path, problem)
    return Dataset(path, arrays, attrs, file_spec)


def mask(raw_path: str | Path, team_path: str | Path) -> Dataset:
    """Write the team-reward version of a raw dataset: same transitions, team_rewards = sum of
    individual rewards, no individual rewards anywhere in the file."""
    raw = read(raw_path)
    if raw.kind != "raw":
        raise DatasetError(raw_path, f"is a {raw.kind!r} dataset; masking needs a raw one (with individual rewards)",
                           "pass --raw results/<tier>/datasets/raw/<env>/<quality>/seed<k>.h5, the file collect writes")
    arrays = {k: v for k, v in raw.arrays.items() if k not in RAW_ONLY}
    arrays["team_rewards"] = team_reward(raw.arrays["individual_rewards"])
    keep = {k: v for k, v in raw.attrs.items() if k not in ("kind", "spec", "checksum", "versions", "n_transitions")}
    write(team_path, arrays, raw.spec, "team", source=str(Path(raw_path)), source_checksum=raw.attrs["checksum"], **keep)
    return read(team_path, kind="team")


def episode_returns(team_rewards: np.ndarray, episode_starts: np.ndarray) -> np.ndarray:
    """Sum of team rewards per episode (episodes are stored contiguously)."""
    starts = np.flatnonzero(episode_starts)
    return np.add.reduceat(team_rewards.astype(np.float64), starts) if len(starts) else np.zeros(0)


def return_stats(returns: np.ndarray) -> dict:
    return {"mean": float(np.mean(returns)), "std": float(np.std(returns)), "min": float(np.min(returns)),
            "max": float(np.max(returns)), "episodes": int(len(returns))}
