"""The one offline training loop, shared by every algorithm.

    for update in 1..U:
        batch = uniform sample of the team-reward dataset (held in memory, on the device)
        reward_assigner.update(batch); batch["rewards"] = reward_assigner.assign(batch)
        backbone.update(batch)
        every `eval_every` updates (and at 0 and U): evaluate in the real env, write metrics.csv
        and a checkpoint

Evaluation plays `eval_episodes` deterministic episodes with the team's actors against the frozen
expert opponents of the behaviour folder (PP, WORLD), on fixed episode seeds, and reports the
team return exactly as the S_random/S_expert references of the dataset were measured
(`rollout.run_episodes`); normalised score = 100 (S - S_random) / (S_expert - S_random). Envs whose
metric is win_rate (SMAX) also report the fraction of evaluation episodes won (the game's `won`).

Run folder (the contract the aggregation reads; its format is maccabench.runfolder):
  config.yaml   the resolved job, device and threads
  metrics.csv   one row per evaluation: updates, loop_steps, wall_s, eval/..., losses/..., causal/...
  ckpt.pt       models, optimisers, RNG states, metrics so far: a rerun resumes from it
  masks.npz     reward assigners with `mask_snapshot` (MACCA): mask probabilities per evaluation
  final.json    written last: final and best evaluation, which one tables use, references
"""
from __future__ import annotations

import hashlib
import json
import random
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from . import data, layout
from .policies import load_policies
from .envs import make_team_env, spec_of
from .errors import MaccabenchError
from .io import atomic_path, remove_partials
from .jobs import TrainJob
from .nets import device as default_device
from .registry import ASSIGNERS, BACKBONES
from .rewards import RewardContext, make_assigner
from .rollout import Episodes, run_episodes
from .runfolder import (DERIVED_FILES, SCORE_UNDEFINED, RunError, final_record, normalized_score, read_config,
                        write_final, write_masks, write_metrics)

EVAL_SEED_OFFSET = 40_000   # offline evaluation episodes: seeds behaviour (10k, 20k) and collection (30k) never use
PROBE_SEED_OFFSET = 50_000  # the fixed probe batch of mask snapshots


class Batches:
    """A team-reward dataset held in memory as tensors, sampled uniformly with its own generator.

    Batches carry the dataset's arrays (discrete: integer `actions` and the `avail_actions` /
    `next_avail_actions` masks) plus `index` (rows drawn), `next_actions` and
    `next_action_valid` (the dataset's action at the next step of the same episode; false at the
    last step of an episode), for backbones that bootstrap from dataset actions (MA-ICQ)."""

    KEYS = ("obs", "actions", "next_obs", "state", "next_state", "terminals", "team_rewards")

    def __init__(self, ds: data.Dataset, device: torch.device, seed: int):
        a = ds.arrays
        T = len(ds)
        valid = np.zeros(T, bool)
        valid[:-1] = ~a["episode_starts"][1:] & ~a["terminals"][:-1].astype(bool) & ~a["timeouts"][:-1].astype(bool)
        next_actions = np.zeros_like(a["actions"])
        next_actions[:-1] = a["actions"][1:]
        next_actions[~valid] = 0
        arrays = {k: a[k] for k in self.KEYS} | {"next_actions": next_actions}
        self.tensors = {k: torch.as_tensor(np.asarray(v, np.float32), device=device) for k, v in arrays.items()}
        if ds.spec.discrete:   # integer actions and the availability masks, as they are
            self.tensors.update({k: torch.as_tensor(v, device=device) for k, v in (
                ("actions", a["actions"]), ("next_actions", next_actions),
                *((name, a[name]) for name in data.DISCRETE_ONLY))})
        self.tensors["next_action_valid"] = torch.as_tensor(valid, device=device)
        self.size, self.device = T, device
        self.gen = torch.Generator().manual_seed(seed)   # CPU: the same rows on every device

    def take(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        idx = idx.to(self.device)
        return {k: v[idx] for k, v in self.tensors.items()} | {"index": idx}

    def sample(self, batch_size: int) -> dict[str, torch.Tensor]:
        return self.take(torch.randint(0, self.size, (batch_size,), generator=self.gen))

    def probe(self, n: int, seed: int) -> dict[str, torch.Tensor]:
        """A fixed batch (same rows for the whole run) for diagnostics such as mask snapshots."""
        g = torch.Generator().manual_seed(seed)
        return self.take(torch.randperm(self.size, generator=g)[: min(n, self.size)])


def training_step(assigner, backbone, batch: dict[str, torch.Tensor]) -> dict:
    """One update of the loop (Algorithm 1): the reward assigner trains on the batch, relabels its
    team reward into per-agent rewards, and the backbone updates on them. Returns their losses."""
    stats = dict(assigner.update(batch))
    batch["rewards"] = assigner.assign(batch)
    stats.update(backbone.update(batch))
    return stats


def _recorded_job(out: Path) -> dict | None:
    """The job a run folder's config.yaml records (without what the machine added), if any."""
    try:
        recorded = read_config(out)
    except RunError as e:   # config.yaml is rewritten by every (re)start: an unreadable one is no record
        print(f"{e}; running the job again (from ckpt.pt where it is this job's)", flush=True)
        return None
    return {k: v for k, v in recorded.items() if k not in ("device", "threads")}


def _job_digest(job: dict, dataset_checksum: str) -> str:
    """Identity of a run's inputs: a checkpoint resumes only the very same job on the same data."""
    return hashlib.sha256((json.dumps(job, sort_keys=True) + dataset_checksum).encode()).hexdigest()


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _checkpoint_of(path: Path, digest: str, dev: torch.device) -> dict | None:
    """The one place a run decides how to start: the checkpoint to resume from (this very job on
    this very data, possibly already at its last update), or None to start over (no checkpoint, an
    unreadable one, or another job's)."""
    if not path.exists():
        return None
    try:
        ckpt = torch.load(path, map_location=dev, weights_only=False)
    except Exception as e:   # truncated or corrupted: a checkpoint is a cache, never a result
        print(f"{path} cannot be read ({type(e).__name__}: {e}); starting over", flush=True)
        return None
    if not isinstance(ckpt, dict) or ckpt.get("digest") != digest:
        print(f"{path} belongs to another job or dataset; starting over", flush=True)
        return None
    return ckpt


def train(job: TrainJob, out_dir: str | Path, progress: bool = True, threads: int | None = None) -> dict:
    """Run (or resume, or find finished) the training run of `job` (config.train_job) in `out_dir`;
    returns the content of final.json."""
    out = Path(out_dir)
    record = job.to_dict()   # what config.yaml records and the resume digest hashes
    if (out / layout.FINAL).exists():
        if _recorded_job(out) == record:
            return json.loads((out / layout.FINAL).read_text())
        (out / layout.FINAL).unlink()   # finished, but for another job: this one starts over
    # files other rules derive from a finished run (reward recovery) describe the run being replaced
    for name in DERIVED_FILES:
        (out / name).unlink(missing_ok=True)
    if threads:
        torch.set_num_threads(threads)
    dev = default_device()
    entry, seed = job.env, job.seed
    spec = spec_of(entry)
    ds = data.read(job.dataset, kind="team", spec=spec)   # a dataset of another env/spec: error naming the file
    s_random, s_expert = float(ds.attrs["S_random"]), float(ds.attrs["S_expert"])
    score_undefined = ds.attrs.get(SCORE_UNDEFINED)   # the behaviour stage's verdict on the references

    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    backbone = BACKBONES[job.backbone].build(spec, job.backbone_config, dev, seed)
    assigner_entry = ASSIGNERS[job.rewards]
    assigner = make_assigner(job.rewards, RewardContext(spec, job.rewards_config, dev, seed, ds, job.raw_dataset))
    batches = Batches(ds, dev, seed)
    probe = batches.probe(job.batch_size, seed + PROBE_SEED_OFFSET) if assigner_entry.mask_snapshots else None

    _, others = load_policies(job.behavior, "expert")
    eval_env = make_team_env(entry, min(job.eval_episodes, 10), others)

    digest = _job_digest(record, ds.attrs["checksum"])
    rows: list[dict] = []
    snapshots: dict[str, list] = {"updates": [], "s_to_r": [], "a_to_r": []}
    start, wall_before = 0, 0.0
    ckpt_path = out / layout.CHECKPOINT
    ckpt = _checkpoint_of(ckpt_path, digest, dev)
    if ckpt is not None:
        backbone.load_state_dict(ckpt["backbone"])
        assigner.load_state_dict(ckpt["assigner"])
        batches.gen.set_state(ckpt["sampler"])
        _set_rng_state(ckpt["rng"])
        rows, snapshots, start, wall_before = ckpt["rows"], ckpt["snapshots"], ckpt["updates"], ckpt["wall_s"]
        print(f"resuming from {ckpt_path} at update {start} of {job.updates}", flush=True)

    out.mkdir(parents=True, exist_ok=True)
    remove_partials(out)    # a killed predecessor's half-written checkpoint or metrics
    resolved = {**record, "device": str(dev), "threads": torch.get_num_threads()}
    with atomic_path(out / layout.RUN_CONFIG) as tmp:
        tmp.write_text(yaml.safe_dump(resolved, sort_keys=False))
    if rows:   # resumed: the folder gets what the checkpoint saw, even when nothing is left to train
        write_metrics(out, rows)
        if probe is not None:
            write_masks(out, snapshots)

    t0 = time.time() - wall_before
    sums: dict[str, object] = {}
    count = 0

    def win_rate(ep: Episodes) -> float | None:
        """The fraction of evaluation episodes won, for envs whose metric is the win rate."""
        if entry["metric"] != "win_rate":
            return None
        if ep.win_rate is None:
            raise MaccabenchError(f"env {entry['name']!r} has metric win_rate, but its suite {entry['suite']!r} "
                                  "reports no per-episode won flag. Fix: use metric normalized_score for it")
        return ep.win_rate

    def evaluate_now(updates: int) -> None:
        nonlocal sums, count
        episodes = job.final_eval_episodes if updates == job.updates else job.eval_episodes
        # avail: the available actions of discrete envs (None for continuous ones)
        ep = run_episodes(eval_env, backbone.act, episodes, seed + EVAL_SEED_OFFSET)
        returns = np.asarray(ep.returns)
        row = {"updates": updates, "loop_steps": updates * job.loop_steps_per_update,
               "wall_s": round(time.time() - t0, 3), "eval/return_mean": float(returns.mean()),
               "eval/return_std": float(returns.std()), "eval/episodes": len(returns),
               "eval/normalized_score": normalized_score(float(returns.mean()), s_random, s_expert, score_undefined),
               "eval/win_rate": win_rate(ep)}
        row.update({k: float(v) / count for k, v in sums.items()})
        rows.append(row)
        sums, count = {}, 0
        if probe is not None:
            s_to_r, a_to_r = assigner.mask_snapshot(probe)
            snapshots["updates"].append(updates)
            snapshots["s_to_r"].append(np.asarray(s_to_r))
            snapshots["a_to_r"].append(np.asarray(a_to_r))
        write_metrics(out, rows)
        if probe is not None:
            write_masks(out, snapshots)
        with atomic_path(ckpt_path) as tmp:
            torch.save({"digest": digest, "updates": updates, "wall_s": row["wall_s"], "rows": rows,
                        "snapshots": snapshots, "backbone": backbone.state_dict(),
                        "assigner": assigner.state_dict(), "sampler": batches.gen.get_state(),
                        "rng": _rng_state()}, tmp)
        score = row["eval/normalized_score"]
        print(f"{job.algo} {entry['name']}/{job.quality} seed {seed}: update {updates}/{job.updates} "
              f"return {row['eval/return_mean']:.2f} score {score if score is None else round(score, 1)} "
              f"({row['wall_s']:.0f} s)", flush=True)

    if start == 0 and not rows:
        if assigner_entry.pretrains:
            assigner.pretrain(lambda: batches.sample(job.batch_size), planned_steps=job.updates)
        evaluate_now(0)

    from tqdm import tqdm
    bar = tqdm(total=job.updates, initial=start, desc=f"{job.algo} {entry['name']}/{job.quality}",
               unit="upd", disable=not progress, mininterval=2)
    for u in range(start + 1, job.updates + 1):
        stats = training_step(assigner, backbone, batches.sample(job.batch_size))
        for k, v in stats.items():
            sums[k] = sums.get(k, 0.0) + (v.detach() if torch.is_tensor(v) else v)
        count += 1
        bar.update(1)
        if u % job.eval_every == 0 or u == job.updates:
            evaluate_now(u)
    bar.close()

    final = final_record(env=entry["name"], quality=job.quality, algo=job.algo, seed=seed, tier=job.tier,
                         metric=entry["metric"], table_score=job.table_score, rows=rows,
                         s_random=s_random, s_expert=s_expert, wall_s=time.time() - t0, score_undefined=score_undefined)
    write_final(out, final)   # last: its presence means the run is finished
    return final

