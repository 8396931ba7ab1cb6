"""Behaviour learning for discrete suites: the learner registry (chosen by the env's action kind,
checked before any job), IPPO's masked softmax, and a real IPPO run on SMAX 2s3z whose folder
collection reads (jax is imported by that one test only)."""
from __future__ import annotations

import json
import types

import numpy as np
import pytest
import torch

from maccabench import config as C
from maccabench.errors import ConfigError


# ---- the masked softmax ---------------------------------------------------------------------------

def _ippo(n=3, O=6, A=7, hidden=16):
    from maccabench.behavior.ippo import IPPO
    game = types.SimpleNamespace(agents=[f"ally_{i}" for i in range(n)], obs_dims=[O] * n, action_dims=[A] * n)
    hp = {"hidden": hidden, "lr": 1e-3, "gamma": 0.99, "gae_lambda": 0.95, "rollout_steps": 4, "epochs": 1,
          "minibatches": 1, "clip_eps": 0.2, "ent_coef": 0.01, "vf_coef": 0.5, "max_grad_norm": 0.5, "anneal_lr": True}
    job = {"seed": 0, "env_steps": 1000, "behavior": hp, "env": {"name": "toy", "team": game.agents}}
    return IPPO(game, job)


def test_masked_softmax_never_samples_an_unavailable_action():
    """Even where the network strongly prefers them, unavailable actions get probability exactly 0:
    none is sampled in 5,000 draws, and the greedy policy policies.pt yields never picks one."""
    from maccabench.behavior.ippo import masked_logits
    from maccabench.rollout import logits_policy
    ippo = _ippo()
    with torch.no_grad():   # make actions 0 and 5 (unavailable below) the network's favourites by far
        ippo.actor.layers[-1].bias[..., [0, 5]] += 50.0
    rng = np.random.default_rng(0)
    K, n, A = 500, ippo.n, ippo.A
    avail = rng.random((K, n, A)) < 0.4
    avail[..., [0, 5]] = False
    avail[np.arange(K), :, rng.integers(1, 5, K)] = True      # at least one available action each
    obs = rng.standard_normal((K, n, ippo.O)).astype(np.float32)
    for _ in range(10):
        a = ippo.explore(obs, avail, 0, rng)
        assert a.shape == (K, n) and np.take_along_axis(avail, a[..., None], -1).all()
    probs = torch.softmax(masked_logits(torch.randn(K, n, A) + 50 * torch.as_tensor(~avail), torch.as_tensor(avail)), -1)
    assert torch.all(probs[torch.as_tensor(~avail)] == 0) and torch.allclose(probs.sum(-1), torch.ones(K, n))
    greedy = logits_policy(ippo.stacked_actor())(obs, avail)
    assert np.take_along_axis(avail, greedy[..., None], -1).all()


# ---- the learner registry -------------------------------------------------------------------------

def test_the_learner_is_chosen_by_the_env_and_checked_against_its_action_kind(cfg):
    from maccabench.behavior.online import learner_class
    from maccabench.registry import BEHAVIOR_LEARNERS
    cfg["tier"] = "smoke"
    assert BEHAVIOR_LEARNERS["matd3"].action_kind == "continuous" and BEHAVIOR_LEARNERS["ippo"].discrete
    assert C.behavior_job(cfg, "cn", 0)["behavior"]["learner"] == "matd3"
    job = C.behavior_job(cfg, "2s3z", 0)
    assert job["behavior"]["learner"] == "ippo" and job["behavior"]["rollout_steps"] == cfg["behavior"]["ippo"]["rollout_steps"]

    # an env's own entry wins over its suite's, and is checked like one
    cfg["behavior"]["learner"]["cn"] = "ippo"
    with pytest.raises(ConfigError) as e:
        C.check(cfg)
    assert e.value.field == "behavior.learner.cn" and "discrete" in e.value.problem and "matd3" in e.value.fix
    cfg["behavior"]["learner"].update(cn="matd3", smax="matd3")
    with pytest.raises(ConfigError) as e:
        C.check(cfg)
    assert e.value.field == "behavior.learner.smax" and "continuous" in e.value.problem and "ippo" in e.value.fix
    cfg["behavior"]["learner"]["smax"] = "qmix"
    with pytest.raises(ConfigError, match="unknown behaviour learner 'qmix'") as e:
        C.check(cfg)
    assert e.value.field == "behavior.learner.smax"
    cfg["behavior"]["learner"]["smax"] = "ippo"
    del cfg["behavior"]["ippo"]
    with pytest.raises(ConfigError) as e:
        C.check(cfg)
    assert e.value.field == "behavior.ippo" and "is missing" in e.value.problem

    # a --job file naming the wrong kind is refused before the loop starts
    with pytest.raises(ConfigError) as e:
        learner_class(C.behavior_job(cfg, "cn", 0), types.SimpleNamespace(discrete=True))
    assert e.value.field == "--job.behavior.learner" and "ippo" in e.value.fix


# ---- a real run on SMAX ----------------------------------------------------------------------------

def test_ippo_on_smax_writes_a_folder_that_collection_reads_and_a_killed_run_resumes(tmp_path, cfg):
    """600 env steps of IPPO on 2s3z (4 envs, an update every 25 steps, checkpoints every 200):
    the folder has random/medium/expert with win rates, collection writes datasets from it that the
    reader accepts (integer actions among the available), and a run stopped after its first resume
    point ends exactly as the uninterrupted one."""
    pytest.importorskip("jaxmarl")
    from maccabench import data
    from maccabench.behavior import online, train
    from maccabench.collect import collect
    cfg["tier"] = "smoke"
    job = C.behavior_job(cfg, "2s3z", 0)
    job.update(env_steps=600, eval_every=200, eval_episodes=4, reference_episodes=4)
    job["behavior"].update(num_envs=4, rollout_steps=25, checkpoint_every_s=0, hidden=32)
    s = train(job, tmp_path / "whole", progress=False)

    assert s["learner"] == "ippo" and set(s["checkpoint_win_rate"]) == {"random", "medium", "expert"}
    assert s["checkpoint_env_steps"] == {"random": 0, "medium": s["checkpoint_env_steps"]["medium"], "expert": 600}
    ippo = cfg["behavior"]["ippo"]
    assert 0 < s["checkpoint_env_steps"]["medium"] < 600
    assert s["updates"] == 600 // (4 * 25) * ippo["epochs"] * ippo["minibatches"]   # 6 rollouts
    assert "win_rate" in s["references"]["expert"] and not (tmp_path / "whole/resume.pt").exists()
    curve = (tmp_path / "whole/curve.csv").read_text().splitlines()
    assert "win_rate_vs_final_opponents" in curve[0] and len(curve) == 1 + 4

    for quality in ("expert", "medium-replay"):
        cj = C.collect_job(cfg, "2s3z", quality, 0)
        cj.update(transitions=200, num_envs=4)
        collect(cj, tmp_path / "whole", tmp_path / f"{quality}.h5")
        ds = data.read(tmp_path / f"{quality}.h5", kind="raw")
        assert ds.spec.discrete and ds.arrays["actions"].dtype == np.int64
        assert ds.arrays["avail_actions"].shape[-1] == 10 and ds.arrays["state"].shape[-1] == 40
    replay = np.load(tmp_path / "whole/replay_medium.npz")
    assert len(replay["obs"]) == s["checkpoint_env_steps"]["medium"] == s["replay_medium_transitions"]

    # killed after the first resume point (at env step 200): the rerun resumes and ends the same
    save = online.OnlineRun._save_resume_point

    class Killed(Exception):
        pass

    def save_then_die(run):
        save(run)
        raise Killed
    online.OnlineRun._save_resume_point = save_then_die
    try:
        with pytest.raises(Killed):
            train(job, tmp_path / "killed", progress=False)
    finally:
        online.OnlineRun._save_resume_point = save
    assert (tmp_path / "killed/resume.pt").exists()
    r = train(job, tmp_path / "killed", progress=False)
    drop_wall = lambda text: [line.split(",")[:2] + line.split(",")[3:] for line in text.splitlines()]
    assert drop_wall((tmp_path / "killed/curve.csv").read_text()) == drop_wall((tmp_path / "whole/curve.csv").read_text())
    assert r["checkpoint_return"] == s["checkpoint_return"] and r["references"] == s["references"]
    pa, pb = (torch.load(tmp_path / d / "policies.pt", weights_only=False) for d in ("whole", "killed"))
    assert all(torch.equal(pa["actors"][q][k], pb["actors"][q][k]) for q in pa["actors"] for k in pa["actors"][q])
    assert json.loads((tmp_path / "killed/summary.json").read_text())["env_steps"] == 600
