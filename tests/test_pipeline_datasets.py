"""The dataset part of the DAG, end to end through Snakemake at the smoke tier (the shared run of
conftest.smoke), and killed behaviour jobs."""
import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from maccabench import config as C
from maccabench import data
from maccabench.envs import spec_of

from conftest import ROOT


@pytest.mark.slow
def test_smoke_datasets_through_snakemake(smoke, cfg):
    cfg["tier"] = "smoke"
    tier = C.tier(cfg)
    for env in tier["envs"]:
        spec = spec_of(C.env_entry(cfg, env))
        summary = json.loads((smoke / f"behavior/{env}/seed0/summary.json").read_text())
        assert (smoke / f"behavior/{env}/seed0/curve.csv").read_text().startswith("env_steps,")
        for q in tier["qualities"]:
            raw = data.read(smoke / f"datasets/raw/{env}/{q}/seed0.h5", kind="raw", spec=spec)
            team = data.read(smoke / f"datasets/team/{env}/{q}/seed0.h5", kind="team", spec=spec)
            assert "individual_rewards" not in team.arrays
            np.testing.assert_allclose(team.arrays["team_rewards"], raw.arrays["individual_rewards"].sum(1), rtol=1e-5)
            assert team.attrs["S_random"] == summary["S_random"] and team.attrs["S_expert"] == summary["S_expert"]
            if q != "medium-replay":   # whole episodes: dataset_transitions / the episode limit, rounded up
                episodes = -(-tier["dataset_transitions"] // spec.episode_limit)
                assert team.arrays["episode_starts"].sum() == episodes
                assert len(team) <= episodes * spec.episode_limit          # SMAX's battles may end early
                ended_early = team.arrays["terminals"].any()                  # MPE's never do
                assert ended_early or len(team) == episodes * spec.episode_limit
            ends = team.arrays["timeouts"] | team.arrays["terminals"]                  # each episode ends once
            assert team.arrays["episode_starts"][0] and ends.sum() == team.arrays["episode_starts"].sum()
    assert not list(smoke.rglob("*.partial"))


@pytest.mark.slow
def test_corrupted_dataset_is_named_by_the_next_stage(smoke, tmp_path):
    import h5py, shutil
    bad = tmp_path / "raw.h5"
    shutil.copy(smoke / "datasets/raw/cn/expert/seed0.h5", bad)
    with h5py.File(bad, "r+") as f:
        f["actions"][0, 0, 0] += 0.5
    r = subprocess.run([sys.executable, "-m", "maccabench", "mask", "--raw", str(bad), "--out", str(tmp_path / "t.h5")],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and str(bad) in r.stderr and "checksum mismatch" in r.stderr
    assert not (tmp_path / "t.h5").exists()


def test_killed_behaviour_job_leaves_no_finished_output(tmp_path):
    out = tmp_path / "behavior"
    p = subprocess.Popen([sys.executable, "-m", "maccabench", "behavior", "--tier", "quick", "--env", "cn",
                          "--out", str(out), "--no-progress"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(6)
    p.send_signal(signal.SIGKILL)
    p.wait()
    finished = [f.name for f in out.glob("*") if not f.name.endswith(".partial")] if out.exists() else []
    assert finished == []


def test_killed_behaviour_job_resumes_to_the_same_result(tmp_path, cfg):
    """SIGKILL after the first resume point, rerun: the learning curve, returns and policies equal
    those of an uninterrupted run (what a SLURM retry after preemption relies on)."""
    kill_behaviour_and_resume(tmp_path, cfg, resume_points=1)


def kill_behaviour_and_resume(tmp_path, cfg, resume_points: int) -> None:
    """Smoke CN behaviour job (3,000 env steps, a resume point at every evaluation, five in all),
    SIGKILLed once `resume_points` of them were written, rerun; asserts it ends as an uninterrupted run."""
    import pandas as pd
    import torch
    cfg["tier"] = "smoke"
    job = C.behavior_job(cfg, "cn", 0)
    job["env_steps"], job["behavior"]["checkpoint_every_s"] = 3000, 0
    cmd = lambda out: [sys.executable, "-m", "maccabench", "behavior", "--env", "cn", "--job", json.dumps(job),
                       "--out", str(out), "--no-progress"]
    subprocess.run(cmd(tmp_path / "whole"), cwd=ROOT, check=True, capture_output=True)
    resume = tmp_path / "killed/resume.pt"
    p = subprocess.Popen(cmd(tmp_path / "killed"), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, seen = time.time() + 120, set()
    while len(seen) < resume_points and time.time() < deadline and p.poll() is None:
        try:
            seen.add(resume.stat().st_mtime_ns)
        except FileNotFoundError:
            pass
        time.sleep(0.01)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert resume.exists() and not (tmp_path / "killed/summary.json").exists()
    r = subprocess.run(cmd(tmp_path / "killed"), cwd=ROOT, check=True, capture_output=True, text=True)
    assert "resumed from" in r.stdout
    a, b = (pd.read_csv(tmp_path / d / "curve.csv").drop(columns="wall_s") for d in ("whole", "killed"))
    pd.testing.assert_frame_equal(a, b)
    sa, sb = (json.loads((tmp_path / d / "summary.json").read_text()) for d in ("whole", "killed"))
    assert sa["checkpoint_return"] == sb["checkpoint_return"] and sa["S_expert"] == sb["S_expert"]
    pa, pb = (torch.load(tmp_path / d / "policies.pt", weights_only=False) for d in ("whole", "killed"))
    for q in pa["actors"]:
        for k in pa["actors"][q]:
            assert torch.equal(pa["actors"][q][k], pb["actors"][q][k])
    assert not resume.exists()
