"""The training loop on a tiny dataset the package makes itself (behaviour learning for a few
hundred env steps, collection, masking), without the session-wide `smoke` DAG: one short run per
backbone (and MACCA's causal assigner), each read back through the run-folder reader."""
import math
from pathlib import Path

import numpy as np
import pytest

from maccabench import config as C
from maccabench import data, layout, runfolder
from maccabench.registry import BACKBONES as ALGOS
from maccabench.behavior import train as learn_behavior
from maccabench.collect import collect
from maccabench.train import train

ENV, QUALITY = "cn", "expert"   # dense rewards: S_random != S_expert even after a few hundred steps
TINY = {"behavior_env_steps": 300, "behavior_start_steps": 100, "behavior_update_every": 10,
        "behavior_eval_every": 100, "behavior_eval_episodes": 2, "reference_episodes": 2,
        "dataset_transitions": 100, "train_updates": 4, "train_batch_size": 16, "eval_every": 2, "eval_episodes": 1}
# one algorithm per continuous backbone with the team reward, and MACCA's causal assigner (masks,
# causal columns); the discrete backbones train on SMAX data, not CN's
CONTINUOUS = {name for name, entry in ALGOS.items() if entry.impl is not None}
ALGORITHMS = [*CONTINUOUS, "macca-omar"]


def tiny_pipeline(base_config: dict, results: Path, env: str, quality: str) -> tuple[dict, str]:
    """(config, results root) of the smoke tier shrunk to TINY under `results`, with the raw and team
    datasets of env/quality (dataset seed 0) made by the package's own stages."""
    cfg = {**base_config, "tier": "smoke", "results": str(results / "{tier}")}
    cfg["tiers"] = {**cfg["tiers"], "smoke": {**cfg["tiers"]["smoke"], **TINY}}
    root = C.results_dir(cfg)
    behavior = layout.behavior_dir(root, env, 0)
    learn_behavior(C.behavior_job(cfg, env, 0), behavior, progress=False, threads=1)
    raw = layout.dataset(root, "raw", env, quality, 0)
    collect(C.collect_job(cfg, env, quality, 0), behavior, raw)
    data.mask(raw, layout.dataset(root, "team", env, quality, 0))
    return cfg, root


@pytest.fixture(scope="module")
def tiny(base_config, tmp_path_factory):
    return tiny_pipeline(base_config, tmp_path_factory.mktemp("results"), ENV, QUALITY)


def test_every_backbone_has_a_run_here(base_config):
    assert {base_config["algorithms"][a]["backbone"] for a in ALGORITHMS} == CONTINUOUS


@pytest.mark.parametrize("algo", ALGORITHMS)
def test_a_short_run_writes_a_run_folder_in_the_format(tiny, algo):
    cfg, root = tiny
    job = C.train_job(cfg, ENV, QUALITY, algo, 0)
    folder = Path(C.run_dir(cfg, ENV, QUALITY, algo, 0))
    returned = train(job, folder, progress=False, threads=1)

    final = runfolder.read_final(folder, env=ENV, quality=QUALITY, algo=algo, seed=0, tier="smoke")
    assert final == returned
    metrics = runfolder.read_metrics(folder)
    assert list(metrics.columns[: len(runfolder.FIXED_COLUMNS)]) == list(runfolder.FIXED_COLUMNS)
    assert metrics["updates"].tolist() == [0, 2, 4] and final["updates"] == 4
    assert metrics["loop_steps"].tolist() == [u * cfg["training"]["loop_steps_per_update"] for u in (0, 2, 4)]
    losses = [c for c in metrics.columns if c.startswith("losses/")]
    assert losses and metrics[losses].iloc[0].isna().all()          # no update before the first evaluation
    undefined = final[runfolder.SCORE_UNDEFINED]   # tiny behaviour learning: references may be within noise
    numbers = metrics.drop(columns=["eval/win_rate"] + (["eval/normalized_score"] if undefined else [])).iloc[1:]  # MPE: no win rate
    assert np.isfinite(numbers.to_numpy(float)).all(), numbers

    ds = data.read(job.dataset, kind="team")
    assert (final["S_random"], final["S_expert"]) == (ds.attrs["S_random"], ds.attrs["S_expert"])
    last = metrics.iloc[-1]
    assert final["final"]["return_mean"] == pytest.approx(last["eval/return_mean"])
    assert undefined == ds.attrs[runfolder.SCORE_UNDEFINED]
    expected = runfolder.normalized_score(last["eval/return_mean"], final["S_random"], final["S_expert"], undefined)
    assert final["final"]["normalized_score"] == (None if undefined else pytest.approx(expected))
    assert all(math.isfinite(final[p]["return_mean"]) for p in runfolder.TABLE_SCORES)

    causal = cfg["algorithms"][algo]["rewards"] == "causal"
    assert {"causal/loss", "causal/rho_sr", "causal/rho_ar"} <= set(metrics.columns) if causal else \
        not any(c.startswith("causal/") for c in metrics.columns)
    if causal:
        masks = runfolder.read_masks(folder)
        spec = ds.spec
        assert masks["updates"].tolist() == [0, 2, 4]
        assert masks["s_to_r"].shape == (3, spec.n_agents, spec.state_dim)
        assert np.isfinite(masks["s_to_r"]).all() and np.isfinite(masks["a_to_r"]).all()
    else:
        assert not (folder / layout.MASKS).exists()
