"""Mask recovery (issue 14 item 2): learned causal masks scored as precision / recall / F1 against
the credit task's true structure, recorded in reward_recovery.json and shown in the recovery table
only for envs that declare ground truth."""
import json
from pathlib import Path

import numpy as np
import pytest

import aggregate_fixtures as F
from maccabench import config as C
from maccabench import layout, runfolder
from maccabench.aggregate import spec, tables
from maccabench.cli import main as cli_main
from maccabench.envs import causal_masks_of
from maccabench.maskscore import score_mask, score_masks
from maccabench.train import train
from test_train_loop import tiny_pipeline

TRUTH = np.array([[1, 1, 0, 0, 0, 0],
                  [0, 0, 1, 1, 0, 0],
                  [0, 0, 0, 0, 1, 0]], bool)


def means(scores: dict) -> tuple:
    return tuple(scores[m]["mean"] for m in ("precision", "recall", "f1"))


def test_perfect_mask_scores_one():
    assert means(score_mask(TRUTH, TRUTH)) == (1.0, 1.0, 1.0)


def test_all_ones_mask_has_full_recall_and_the_true_density_as_precision():
    s = score_mask(np.ones_like(TRUTH), TRUTH)
    assert s["precision"]["per_agent"] == [2 / 6, 2 / 6, 1 / 6]
    assert s["recall"]["mean"] == 1.0
    assert s["f1"]["per_agent"] == pytest.approx([0.5, 0.5, 2 / 7])


def test_all_zeros_mask_has_no_precision_and_zero_recall():
    s = score_mask(np.zeros_like(TRUTH), TRUTH)
    assert s["precision"] == {"per_agent": [None, None, None], "mean": None}   # undefined, not 0 or 1
    assert means(s)[1:] == (0.0, 0.0)


def test_one_wrong_entry_costs_only_its_agent():
    learned = TRUTH.copy()
    learned[2, 5] = True            # agent 2: one false positive
    learned[0, 1] = False           # agent 0: one false negative
    s = score_mask(learned, TRUTH)
    assert s["precision"]["per_agent"] == [1.0, 1.0, 0.5]
    assert s["recall"]["per_agent"] == [0.5, 1.0, 1.0]
    assert s["f1"]["per_agent"] == pytest.approx([2 / 3, 1.0, 2 / 3])
    assert s["f1"]["mean"] == pytest.approx((2 / 3 + 1 + 2 / 3) / 3)


def test_probabilities_are_thresholded_at_h_inclusive():
    truth = (TRUTH, TRUTH[:, :2])
    p = {"s_to_r": np.where(TRUTH, 0.3, 0.29), "a_to_r": np.where(TRUTH[:, :2], 0.9, 0.1)}
    scored = score_masks(p, truth, h=0.3)
    assert scored["threshold"] == 0.3 and means(scored["s_to_r"]) == (1.0, 1.0, 1.0)
    assert means(score_masks(p, truth, h=0.31)["s_to_r"])[1] == 0.0


def test_ground_truth_comes_from_the_task_not_the_env_name(base_config):
    cfg = base_config
    state, action = causal_masks_of(C.env_entry(cfg, "cn-credit"))
    assert state.shape == (3, 54) and action.shape == (3, 6)
    assert action.tolist() == np.kron(np.eye(3, dtype=bool), [True, True]).tolist()
    renamed = {**C.env_entry(cfg, "cn-credit"), "name": "my-credit"}
    assert causal_masks_of(renamed)[0].tolist() == state.tolist()
    assert causal_masks_of(C.env_entry(cfg, "cn")) is None and causal_masks_of(C.env_entry(cfg, "pp")) is None


def test_a_damaged_mask_recovery_is_named(tmp_path):
    path = tmp_path / layout.RECOVERY
    good = {"pearson": {"per_agent": [0.1], "mean": 0.1}, "spearman": {"per_agent": [0.1], "mean": 0.1}}
    path.write_text(json.dumps({**good, runfolder.MASK_RECOVERY: {"s_to_r": {"precision": 1.0}}}))
    with pytest.raises(runfolder.RunError, match=runfolder.MASK_RECOVERY):
        runfolder.read_recovery(tmp_path)
    path.write_text(json.dumps({**good, runfolder.MASK_RECOVERY: None}))
    assert runfolder.read_recovery(tmp_path)[runfolder.MASK_RECOVERY] is None


# ---- the recovery table ------------------------------------------------------------------------

def test_recovery_table_shows_mask_scores_only_where_there_is_ground_truth(base_config, tmp_path):
    cfg = F.fixture_config(base_config, tmp_path, seeds=(0, 1), envs=["cn", "cn-credit"], qualities=["expert"])
    t = spec.resolve(cfg, "recovery")
    truth = causal_masks_of(C.env_entry(cfg, "cn-credit"))
    for k in t.runs():
        folder = F.write_run(cfg, k.env, k.quality, k.algo, k.seed, 1.0, recovery=0.5)
        record = json.loads((folder / layout.RECOVERY).read_text())
        if k.env == "cn-credit":   # seed 0 learns the truth, seed 1 everything
            p = [t_.astype(float) if k.seed == 0 else np.ones(t_.shape) for t_ in truth]
            masks = score_masks({"s_to_r": p[0], "a_to_r": p[1]}, truth, h=0.5)
        else:
            masks = None
        (folder / layout.RECOVERY).write_text(json.dumps(runfolder.recovery_record(record, masks)))
    built = tables.build(t)
    df = built.long.set_index(["env", "algo"])
    assert df.at[("cn-credit", "macca-omar"), "a_to_r_recall_mean"] == 1.0
    assert df.at[("cn-credit", "macca-omar"), "a_to_r_precision_mean"] == pytest.approx((1 + 1 / 3) / 2)
    assert df.at[("cn-credit", "macca-omar"), "s_to_r_precision_mean"] == pytest.approx((1 + 4 / 54) / 2)
    assert not df.at[("cn", "macca-omar"), "mask_ground_truth"]
    assert np.isnan(df.at[("cn", "macca-omar"), "a_to_r_f1_mean"])       # no number for cn, not a zero
    names = [s.heading for s in built.sections]
    assert sum("Mask recovery" in n for n in names) == 2
    a_to_r = next(s for s in built.sections if "a→r" in s.heading).frame.set_index("Env")
    column = t.label("macca-omar")
    assert str(a_to_r.at[t.label("cn"), column].text) == tables.NO_TRUTH
    assert a_to_r.at[t.label("cn-credit"), column].text == "0.75 ± 0.35 (0.67 / 1.00)"
    md = tables.render(t.title, t.caption(), built.sections, built.notes, "md")
    assert tables.NO_TRUTH in md and "Mask recovery" in md


def test_recovery_table_without_ground_truth_has_no_mask_sections(base_config, tmp_path):
    cfg = F.fixture_config(base_config, tmp_path, seeds=(0,), envs=["cn"], qualities=["expert"])
    t = spec.resolve(cfg, "recovery")
    for k in t.runs():
        F.write_run(cfg, k.env, k.quality, k.algo, k.seed, 1.0, recovery=0.5)   # files from before mask recovery
    built = tables.build(t)
    assert not any("Mask recovery" in s.heading for s in built.sections)
    assert not any("Mask recovery" in n for n in built.notes)


# ---- a real MACCA run on the credit task ---------------------------------------------------------

ENV, QUALITY, ALGO = "cn-credit", "expert", "macca-omar"


def test_a_short_macca_run_on_the_credit_task_records_mask_recovery(base_config, tmp_path):
    cfg, root = tiny_pipeline(base_config, tmp_path, ENV, QUALITY)
    raw = layout.dataset(root, "raw", ENV, QUALITY, 0)
    job = C.train_job(cfg, ENV, QUALITY, ALGO, 0)
    folder = Path(C.run_dir(cfg, ENV, QUALITY, ALGO, 0))
    train(job, folder, progress=False, threads=1)

    out = folder / layout.RECOVERY
    cli_main(["recovery", "--run", str(folder), "--raw", str(raw), "--out", str(out)])   # what the rule runs
    record = runfolder.read_recovery(folder)
    masks = record[runfolder.MASK_RECOVERY]
    assert masks["threshold"] == job.rewards_config.h and masks["updates"] == 4
    learned = runfolder.read_masks(folder)
    truth = causal_masks_of(job.env)
    expected = score_masks({k: learned[k][-1] for k in ("s_to_r", "a_to_r")}, truth, job.rewards_config.h)
    for kind in ("s_to_r", "a_to_r"):
        assert masks[kind] == expected[kind]
        assert len(masks[kind]["recall"]["per_agent"]) == 3
        assert 0.0 <= masks[kind]["recall"]["mean"] <= 1.0
