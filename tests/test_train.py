"""The training stage end to end: the smoke tier through Snakemake (every run folder, per the
contract the tables read), reproducibility, resume after a kill, and errors that name the culprit."""
import csv
import dataclasses
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from maccabench import config as C
from maccabench import data
from maccabench.envs.base import SpecMismatch
from maccabench.jobs import TrainJob
from maccabench.runfolder import FINAL_KEYS, FIXED_COLUMNS, POINT_KEYS, SCORE_UNDEFINED
from maccabench.train import train

from conftest import ROOT, snakemake


@pytest.fixture
def smoke_cfg(cfg, smoke):
    cfg.update(tier="smoke", results=str(smoke.parent / "{tier}"))
    return cfg


def metrics(path: Path) -> list[dict]:
    """metrics.csv rows without wall time (the one column allowed to differ between runs)."""
    with open(path) as f:
        return [{k: v for k, v in row.items() if k != "wall_s"} for row in csv.DictReader(f)]


def job_of(run_dir: Path) -> TrainJob:
    """The job a run folder records (config.yaml, less what the machine added)."""
    job = yaml.safe_load((run_dir / "config.yaml").read_text())
    return TrainJob.from_dict({k: v for k, v in job.items() if k not in ("device", "threads")})


@pytest.mark.slow
def test_smoke_tier_writes_every_run_folder(smoke, smoke_cfg):
    tier = C.tier(smoke_cfg)
    n_evals = tier["train_updates"] // tier["eval_every"] + 1
    for env in tier["envs"]:
        for q in tier["qualities"]:
            ds = data.read(smoke / f"datasets/team/{env}/{q}/seed0.h5")
            for algo in tier["algos"]:
                run = smoke / f"runs/{env}/{q}/{algo}/seed0"
                final = json.loads((run / "final.json").read_text())
                assert set(final) == set(FINAL_KEYS) | {SCORE_UNDEFINED} and set(final["final"]) == set(final["best"]) == set(POINT_KEYS)
                assert (final["env"], final["quality"], final["algo"], final["seed"], final["tier"]) == (env, q, algo, 0, "smoke")
                metric = smoke_cfg["environments"][env]["metric"]
                assert final["table_score"] == "final" and final["metric"] == metric
                assert (final["S_random"], final["S_expert"]) == (ds.attrs["S_random"], ds.attrs["S_expert"])
                with open(run / "metrics.csv") as f:
                    rows = list(csv.DictReader(f))
                header = list(rows[0])
                assert header[: len(FIXED_COLUMNS)] == list(FIXED_COLUMNS)
                extra = header[len(FIXED_COLUMNS):]   # the contract: backbone losses, then MACCA's causal columns
                n_losses = sum(h.startswith("losses/") for h in extra)
                assert extra[0] == "losses/critic" and all(h.startswith("losses/") for h in extra[:n_losses])
                causal = {"causal/loss", "causal/rho_sr", "causal/rho_ar"}
                assert set(extra[n_losses:]) == (causal if smoke_cfg["algorithms"][algo]["rewards"] == "causal" else set())
                assert [int(r["updates"]) for r in rows] == [i * tier["eval_every"] for i in range(n_evals)]
                assert [int(r["loop_steps"]) for r in rows] == [100 * int(r["updates"]) for r in rows]
                assert rows[0]["losses/critic"] == "" and rows[-1]["losses/critic"] != ""
                if metric == "win_rate":   # SMAX: every evaluation's fraction of battles won
                    rates = [float(r["eval/win_rate"]) for r in rows]
                    assert all(0.0 <= w <= 1.0 for w in rates)
                    assert final["final"]["win_rate"] == pytest.approx(rates[-1])
                    assert final["versions"]["jaxmarl"]
                else:
                    assert all(r["eval/win_rate"] == "" for r in rows)   # MPE: no win rate
                last = rows[-1]
                ret = float(last["eval/return_mean"])
                assert final["final"]["return_mean"] == pytest.approx(ret)
                if ds.attrs[SCORE_UNDEFINED]:   # the smoke tier's references are within noise: no score, said why
                    assert final[SCORE_UNDEFINED] == ds.attrs[SCORE_UNDEFINED] and final["final"]["normalized_score"] is None
                    assert all(r["eval/normalized_score"] == "" for r in rows)
                else:
                    score = 100 * (ret - ds.attrs["S_random"]) / (ds.attrs["S_expert"] - ds.attrs["S_random"])
                    assert final["final"]["normalized_score"] == pytest.approx(score)
                    assert final["best"]["normalized_score"] == pytest.approx(max(float(r["eval/normalized_score"]) for r in rows))
                cfg_run = yaml.safe_load((run / "config.yaml").read_text())
                assert cfg_run["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
                assert cfg_run["dataset"].endswith(f"datasets/team/{env}/{q}/seed0.h5") and cfg_run["backbone_hp"]
                assert (run / "ckpt.pt").exists()
    assert not list(smoke.rglob("*.partial"))


@pytest.mark.slow
def test_rerun_has_nothing_to_do(smoke):
    r = snakemake("-n", "all", results=smoke.parent)
    assert r.returncode == 0 and "Nothing to be done" in r.stdout + r.stderr


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["icql", "omar", "maicq"])
def test_same_job_and_seed_give_the_same_metrics(smoke, tmp_path, algo):
    """Rerunning the job recorded in a Snakemake run folder reproduces its metrics exactly; another
    training seed does not."""
    run = smoke / f"runs/pp/medium/{algo}/seed0"
    job = job_of(run)
    train(job, tmp_path / "again", progress=False, threads=1)
    assert metrics(tmp_path / "again/metrics.csv") == metrics(run / "metrics.csv")
    train(dataclasses.replace(job, seed=1), tmp_path / "seed1", progress=False, threads=1)
    assert metrics(tmp_path / "seed1/metrics.csv") != metrics(run / "metrics.csv")


@pytest.mark.slow
def test_killed_run_resumes_to_the_metrics_of_an_uninterrupted_one(smoke, tmp_path):
    job = dataclasses.replace(job_of(smoke / "runs/pp/expert/omar/seed0"), updates=300, eval_every=20)
    train(job, tmp_path / "whole", progress=False, threads=1)

    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "maccabench", "train", "--env", "pp", "--quality", "expert", "--algo", "omar",
           "--job", job.to_json(), "--out", str(out), "--threads", "1", "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if (out / "metrics.csv").exists() and len(metrics(out / "metrics.csv")) >= 4:   # evaluated at 0..60
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "final.json").exists(), "the run finished before it could be killed: give it more updates"
    done = len(metrics(out / "metrics.csv"))
    assert 4 <= done < 16

    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    resumed_at = int(r.stdout.split("resuming from")[1].split("at update")[1].split()[0])
    # metrics.csv is written just before ckpt.pt, so a kill between the two resumes from the
    # previous checkpoint: 40 or 60, never from the start
    assert resumed_at in (40, 60)
    assert metrics(out / "metrics.csv") == metrics(tmp_path / "whole/metrics.csv")
    whole = json.loads((tmp_path / "whole/final.json").read_text())
    resumed = json.loads((out / "final.json").read_text())
    assert resumed["final"] == whole["final"] and resumed["best"] == whole["best"]
    assert not list(out.glob("*.partial")) and not list(out.glob(".*.partial"))


@pytest.mark.slow
def test_a_run_folder_of_another_job_is_not_reused(smoke, tmp_path):
    run = smoke / "runs/cn/expert/icql/seed0"
    job = job_of(run)
    out = tmp_path / "run"
    other = train(dataclasses.replace(job, seed=5), out, progress=False, threads=1)   # finished run (and checkpoint) of seed 5
    assert train(job, out, progress=False, threads=1) != other           # is no head start for seed 0
    assert metrics(out / "metrics.csv") == metrics(run / "metrics.csv")
    assert json.loads((out / "final.json").read_text())["seed"] == 0


@pytest.mark.slow
def test_dataset_of_another_env_is_an_error_naming_the_file(smoke, smoke_cfg, tmp_path):
    job = C.train_job(smoke_cfg, "cn", "expert", "icql", 0)
    wrong = str(smoke / "datasets/team/pp/expert/seed0.h5")
    with pytest.raises(SpecMismatch, match=f"{wrong}.*does not match environment 'cn'"):
        train(dataclasses.replace(job, dataset=wrong), tmp_path / "x", progress=False)
    assert not (tmp_path / "x/final.json").exists()


def test_cli_names_an_unknown_algorithm():
    r = subprocess.run([sys.executable, "-m", "maccabench", "train", "--tier", "smoke", "--env", "cn",
                        "--quality", "expert", "--algo", "qmix"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2
    assert "config field `algo`: unknown algorithm 'qmix'" in r.stderr and "icql" in r.stderr


def test_cli_names_a_wrongly_typed_hyperparameter_in_a_job(cfg, tmp_path):
    cfg["tier"] = "smoke"
    job = C.train_job(cfg, "cn", "expert", "omar", 0).to_dict()
    job["backbone_hp"]["omar_samples"] = "ten"
    r = subprocess.run([sys.executable, "-m", "maccabench", "train", "--env", "cn", "--quality", "expert",
                        "--algo", "omar", "--job", json.dumps(job), "--out", str(tmp_path / "run")],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and "backbone_hp.omar_samples" in r.stderr and "must be of type int" in r.stderr
    assert not (tmp_path / "run").exists()   # rejected before anything was written
