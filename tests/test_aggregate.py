"""Aggregation: statistics against hand-computed values, tables and figures built from run folders
the tests write themselves (tests/aggregate_fixtures.py, the training stage's contract format),
bad inputs named, and the smoke tier producing every table and figure through Snakemake."""
import copy
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import aggregate_fixtures as F
from conftest import ROOT
from maccabench import config as C
from maccabench.aggregate import figures, spec, stats, tables
from maccabench.aggregate.runs import RunError, RunsMissing
from maccabench.errors import ConfigError


# ---- statistics ------------------------------------------------------------------------------------

def test_iqm_hand_computed():
    assert stats.iqm([4, 1, 3, 2]) == pytest.approx(2.5)                  # middle two of four: (2 + 3) / 2
    assert stats.iqm(np.arange(1, 9)) == pytest.approx(4.5)               # 3, 4, 5, 6
    # n = 5: 1.25 cut from each end -> (0.75*2 + 3 + 0.75*4) / 2.5
    assert stats.iqm([100, 1, 2, 3, 4]) == pytest.approx((0.75 * 2 + 3 + 0.75 * 4) / 2.5)
    # n = 3: 0.75 cut from each end -> (0.25*1 + 2 + 0.25*30) / 1.5 (scipy's trim_mean would give the plain mean)
    assert stats.iqm([30, 1, 2]) == pytest.approx((0.25 * 1 + 2 + 0.25 * 30) / 1.5)
    assert stats.iqm([7.0]) == 7.0
    assert stats.iqm([[1, 2], [3, 4]]) == pytest.approx(2.5)             # tasks are pooled


def test_probability_of_improvement_hand_computed():
    # pairs (x, y): 3>1, 3<4, 3<6, 4>1, 4=4 (half), 4<6, 5>1, 5>4, 5<6 -> 4.5 / 9
    assert stats.probability_of_improvement_task([3, 4, 5], [1, 4, 6]) == pytest.approx(0.5)
    assert stats.probability_of_improvement_task([2, 3], [1, 1]) == 1.0
    assert stats.probability_of_improvement_task([1, 1], [1]) == 0.5
    # averaged over tasks, not pooled: task 1 gives 1, task 2 gives 0.25
    assert stats.probability_of_improvement([[1], [0, 0]], [[0], [1, -1]]) == pytest.approx((1 + 0.5) / 2)
    p, lo, hi = stats.probability_of_improvement_ci([[2, 3]], [[1, 1]], reps=200)
    assert (p, lo, hi) == (1.0, 1.0, 1.0)


def test_bootstrap_ci_hand_computed_and_stratified():
    # resampling two seeds {0, 1}: the mean is 0, 0.5 or 1 with probabilities 1/4, 1/2, 1/4, so the
    # 2.5th and 97.5th percentiles are 0 and 1
    point, lo, hi = stats.bootstrap_ci([0.0, 1.0], "mean", reps=4000, seed=1)
    assert (point, lo, hi) == (0.5, 0.0, 1.0)
    # stratified: task A = [10, 10] always contributes two 10s, so the pooled mean of a replicate is
    # (20 + b1 + b2) / 4 with b from {0, 1}: 5, 5.25 or 5.5 -- never 2.5 or 10 as pooled resampling could give
    point, lo, hi = stats.bootstrap_ci([[10.0, 10.0], [0.0, 1.0]], "mean", reps=4000, seed=1)
    assert (point, lo, hi) == (5.25, 5.0, 5.5)
    # one seed: nothing to resample
    assert stats.bootstrap_ci([3.0], "iqm") == (3.0, 3.0, 3.0)
    # seeded: the same seed gives the same interval
    x = np.random.default_rng(0).normal(size=7)
    assert stats.bootstrap_ci(x, seed=5) == stats.bootstrap_ci(x, seed=5)


def test_mean_std_is_the_sample_std():
    m, s = stats.mean_std([1.0, 2.0, 6.0])
    assert m == 3.0 and s == pytest.approx(math.sqrt(((1 - 3) ** 2 + (2 - 3) ** 2 + (6 - 3) ** 2) / 2))
    assert math.isnan(stats.mean_std([4.0])[1])


# ---- tables from fixture run folders ----------------------------------------------------------------

@pytest.fixture
def small_cfg(base_config, tmp_path):
    """CN with two qualities and three seeds: six algorithms x 2 cells x 3 seeds = 36 fixture runs."""
    return F.fixture_config(base_config, tmp_path, seeds=(0, 1, 2), envs=["cn"], qualities=["expert", "medium"])


# chosen final scores per (quality, algo): seeds 0, 1, 2
SCORES = {
    ("expert", "icql"): [10, 20, 60], ("expert", "omar"): [1, 4, 6], ("expert", "maicq"): [5, 5, 5],
    ("expert", "macca-cql"): [30, 30, 31], ("expert", "macca-omar"): [3, 4, 5], ("expert", "macca-icq"): [90, 80, 70],
    ("medium", "icql"): [0, 0, 0], ("medium", "omar"): [2, 2, 2], ("medium", "maicq"): [1, 2, 3],
    ("medium", "macca-cql"): [-1, -2, -3], ("medium", "macca-omar"): [2, 2, 2], ("medium", "macca-icq"): [4, 5, 6],
}


def fill_scores(cfg, table):
    F.fill_table(cfg, table, lambda env, q, algo, seed: SCORES[q, algo][seed])


def test_table1_cells_are_the_hand_computed_statistics(small_cfg, tmp_path):
    t = spec.resolve(small_cfg, "table1")
    assert t.rows == [("cn", "expert"), ("cn", "medium")]
    fill_scores(small_cfg, t)
    built = tables.build(t)
    paths = tables.write(built, tmp_path / "tables")
    df = tables.read_csv(paths["csv"])
    cell = df[(df.env == "cn") & (df.quality == "expert")].set_index("algo")
    assert cell.at["icql", "mean"] == pytest.approx(30.0)
    assert cell.at["icql", "std"] == pytest.approx(math.sqrt((400 + 100 + 900) / 2))
    assert cell.at["icql", "iqm"] == pytest.approx((0.25 * 10 + 20 + 0.25 * 60) / 1.5)
    assert cell.at["icql", "n_seeds"] == 3 and cell.at["icql", "seeds"] == "0,1,2"
    assert cell.at["macca-omar", "improves_on"] == "omar"
    assert cell.at["macca-omar", "p_improvement"] == pytest.approx(0.5)       # [3,4,5] vs [1,4,6], by hand above
    assert cell.at["macca-icq", "p_improvement"] == 1.0                         # [90,80,70] vs [5,5,5]
    assert cell.at["macca-cql", "p_improvement"] == pytest.approx(6 / 9)       # [30,30,31] vs [10,20,60]
    best = df[df.best_in_row & (df.quality == "expert")].algo.tolist()
    assert best == ["macca-icq"]
    # medium: omar and macca-omar tie at 2 but macca-icq (5) is best; P(macca-omar > omar) = 0.5 (all ties)
    med = df[(df.quality == "medium")].set_index("algo")
    assert med.at["macca-omar", "p_improvement"] == 0.5
    # all tasks: P averaged over the two tasks; IQM over the six pooled seeds
    agg = df[df.env == "all"].set_index("algo")
    assert agg.at["macca-omar", "p_improvement"] == pytest.approx((0.5 + 0.5) / 2)
    assert agg.at["macca-cql", "p_improvement"] == pytest.approx((6 / 9 + 0.0) / 2)
    assert agg.at["icql", "iqm"] == pytest.approx(stats.iqm([0, 0, 0, 10, 20, 60]))
    assert agg.at["icql", "iqm"] == pytest.approx((0.5 * 0 + 0 + 10 + 0.5 * 20) / 3)   # n=6: 1.5 cut per end
    assert agg.at["icql", "iqm_low"] <= agg.at["icql", "iqm"] <= agg.at["icql", "iqm_high"]
    # the paper's form in every human format, best in bold
    md = paths["md"].read_text()
    assert "| CN    | expert    | 30.0 ± 26.5" in md and "**80.0 ± 10.0**" in md
    assert "P(MACCA-OMAR > OMAR)" in md and "interquartile mean" in md
    assert r"\textbf{80.0 $\pm$ 10.0}" in paths["tex"].read_text()
    assert "<b>80.0 ± 10.0</b>" in paths["html"].read_text()


def test_table_uses_the_best_evaluation_only_when_the_run_says_so(small_cfg):
    t = spec.resolve(small_cfg, "table1")
    fill_scores(small_cfg, t)
    # a run whose score falls from 50 to 10: final = 10, best = 50 (at update 0)
    F.write_run(small_cfg, "cn", "expert", "icql", 0, 10.0, start_score=50.0, table_score="best")
    df = tables.build(t).long
    cell = df[(df.quality == "expert") & (df.algo == "icql")].iloc[0]
    assert cell["mean"] == pytest.approx((50 + 20 + 60) / 3)


def test_missing_runs_fail_with_the_list_unless_partial_allowed(small_cfg, tmp_path):
    t = spec.resolve(small_cfg, "table1")
    fill_scores(small_cfg, t)
    gone = [F.results_dir(small_cfg) / "runs/cn/medium/omar/seed1", F.results_dir(small_cfg) / "runs/cn/expert/icql/seed2"]
    for g in gone:
        shutil.rmtree(g)
    with pytest.raises(RunsMissing) as err:
        tables.build(t)
    assert sorted(err.value.missing) == sorted(str(g / "final.json") for g in gone)
    assert "allow_partial" in str(err.value)
    # the CLI says the same and exits 2
    cfg_file = tmp_path / "config.yaml"
    cfg_file.write_text(yaml.safe_dump(small_cfg))
    r = subprocess.run([sys.executable, "-m", "maccabench.aggregate", "table", "--config", str(cfg_file),
                        "--name", "table1", "--out", str(tmp_path / "t")], capture_output=True, text=True,
                       cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert r.returncode == 2 and str(gone[0] / "final.json") in r.stderr
    assert not (tmp_path / "t/table1.md").exists()
    # partial allowed: built, marked, the missing seed shown
    small_cfg["tables"]["allow_partial"] = True
    t = spec.resolve(small_cfg, "table1")
    built = tables.build(t)
    md = tables.render(t.title, t.caption(), built.sections, built.notes, "md", built.partial)
    assert md.startswith("# PARTIAL: ") and "2 of 36 runs are missing" in md and "†(n=2/3)" in md
    assert built.long["partial"].all()
    assert str(gone[0] / "final.json") not in t.input_files()   # a partial table never asks for missing runs


def test_a_run_in_the_wrong_place_or_tier_is_named(small_cfg):
    t = spec.resolve(small_cfg, "table1")
    fill_scores(small_cfg, t)
    folder = F.write_run(small_cfg, "cn", "expert", "omar", 1, 4.0, final_overrides={"algo": "maicq"})   # final.json says maicq
    with pytest.raises(RunError, match=r"omar/seed1/final.json: belongs to another run: algo='maicq'"):
        tables.build(t)
    F.write_run(small_cfg, "cn", "expert", "omar", 1, 4.0, tier="quick")
    with pytest.raises(RunError, match="produced by tier 'quick', not 'smoke'"):
        tables.build(t)
    (folder / "final.json").write_text('{"env": "cn"')
    with pytest.raises(RunError, match="not valid JSON"):
        tables.build(t)


def test_sweep_reads_scores_and_densities_at_points_in_training(small_cfg):
    t = spec.resolve(small_cfg, "table6")
    assert t.at == [0.05, 0.25, 0.5, 1.0] and t.density == "rho_ar"
    for label, algo in t.rows:
        for s in t.seeds:
            # score from 0 to 100 (+ seed), rho_ar from 0.8 to 0.4, evaluated every 10 of 100 updates
            F.write_run(small_cfg, "cn", "expert", algo, s, 100.0 + s, rho_ar=(0.8, 0.4))
    df = tables.build(t).long
    row = df[(df.variant == "0.5") & (df.at_fraction == 0.5)].iloc[0]
    assert row["loop_steps"] == 5000                      # update 50 of 100, x 100
    assert row["mean"] == pytest.approx(np.mean([0.5 * (100 + s) for s in (0, 1, 2)]))
    assert row["rho_ar_mean"] == pytest.approx(0.6)
    # 0.05 of 100 updates = 5: evaluations at 0 and 10 are equally near; the earlier one is used
    early = df[(df.variant == "0.5") & (df.at_fraction == 0.05)].iloc[0]
    assert early["loop_steps"] == 0 and early["mean"] == 0 and early["rho_ar_mean"] == pytest.approx(0.8)


def test_variants_table_reads_final_causal_diagnostics(small_cfg):
    t = spec.resolve(small_cfg, "table7")
    for label, algo in t.rows:
        for s in t.seeds:
            F.write_run(small_cfg, t.env, t.quality, algo, s, 10.0 * s, rho_sr=(1, 0.25), rho_ar=(1, 0.5),
                        causal_loss=(2.0, 0.125 * (s + 1)))
    built = tables.build(t)
    df = built.long.set_index(["variant", "measure"])
    assert df.at[("0.1", "normalized_score"), "mean"] == pytest.approx(10.0)
    assert df.at[("0.1", "rho_sr"), "mean"] == pytest.approx(0.25)
    assert df.at[("0.1", "causal_loss"), "mean"] == pytest.approx(0.25)
    md = tables.render(t.title, t.caption(), built.sections, built.notes, "md")
    row = next(line for line in md.splitlines() if line.startswith("| 0.1 "))   # every row ties: all bold
    assert [c.strip() for c in row.strip("|").split("|")] == ["0.1", "MACCA-OMAR", "**10.0 ± 10.0**", "0.25 ± 0.00",
                                                              "0.50 ± 0.00", "0.250 ± 0.125"]


def test_variants_improvement_pairs(small_cfg):
    t = spec.resolve(small_cfg, "table9")
    final = {"omar-gt": [9, 9, 9], "omar": [1, 2, 3], "macca-omar-gt": [8, 8, 8], "macca-omar": [2, 3, 4]}
    for _, algo in t.rows:
        for s in t.seeds:
            F.write_run(small_cfg, "cn", "expert", algo, s, final[algo][s])
    df = tables.build(t).long
    p = df[df.measure == "p_improvement"].set_index("variant")
    # [2,3,4] vs [1,2,3]: 6 wins (2>1, 3>1, 3>2, 4>1, 4>2, 4>3) + 2 ties (2=2, 3=3) of 9 pairs
    assert p.at["MACCA-OMAR", "p_improvement"] == pytest.approx((6 + 0.5 * 2) / 9)
    assert p.at["MACCA-OMAR with GT", "p_improvement"] == 0.0


def test_side_by_side_marks_the_papers_values(small_cfg, tmp_path):
    t = spec.resolve(small_cfg, "table1")
    fill_scores(small_cfg, t)
    out = tmp_path / "tables"
    tables.write(tables.build(t), out)
    paper = tables.load_paper_values(ROOT / "config/paper_values.yaml")
    sbs = tables.side_by_side(t, tables.read_csv(out / "table1.csv"), paper)
    paths = tables.write_side_by_side(sbs, out)
    row = sbs.long.iloc[0]
    assert row["MACCA-OMAR (paper)"] == "111.7 ± 4.3" and row["MACCA-OMAR (ours)"] == "4.0 ± 1.0"
    assert row["I-CQL (paper)"] == "33.6 ± 22.9" and row["I-CQL (ours)"] == "30.0 ± 26.5"
    assert "the paper's published values" in paths["md"].read_text()
    # our own table never contains a paper value
    assert "111.7" not in (out / "table1.md").read_text()


def test_paper_values_cover_every_table_they_are_named_for(base_config):
    paper = tables.load_paper_values(ROOT / "config/paper_values.yaml")
    t1 = paper["table1"]["cells"]
    assert sorted(t1) == ["cn", "pp", "world"]
    assert all(len(t1[e][q]) == 6 for e in t1 for q in t1[e])
    assert t1["pp"]["expert"]["macca-icq"] == [114.4, 25.1] and t1["world"]["random"]["icql"] == [0.1, 4.5]
    for name, entry in base_config["tables"].items():
        if isinstance(entry, dict) and entry.get("paper"):
            assert entry["paper"] in paper, name
            if entry["kind"] in ("sweep", "variants"):
                assert set(paper[entry["paper"]]["rows"]) == {str(k) for k in entry["rows"]}, name
            if entry["kind"] == "sweep":
                assert paper[entry["paper"]]["at_fraction"] == entry["at"], name


def test_recovery_table(small_cfg):
    t = spec.resolve(small_cfg, "recovery")
    for k in t.runs():
        F.write_run(small_cfg, k.env, k.quality, k.algo, k.seed, 1.0, recovery=0.2 * (k.seed + 1))
    # a model whose r_hat is constant has undefined correlations (None): that seed is left out
    (F.results_dir(small_cfg) / "runs/cn/medium/macca-cql/seed2/reward_recovery.json").write_text(json.dumps(
        {"pearson": {"per_agent": [None, None, None], "mean": None}, "spearman": {"per_agent": [None] * 3, "mean": None},
         "n_samples": 500}))
    df = tables.build(t).long.set_index(["quality", "algo"])
    assert df.at[("medium", "macca-cql"), "pearson_mean"] == pytest.approx(0.3)        # seeds 0, 1: 0.2, 0.4
    assert df.at[("expert", "macca-omar"), "pearson_mean"] == pytest.approx(0.4)
    assert df.at[("expert", "macca-omar"), "spearman_mean"] == pytest.approx(0.35)
    assert df.at[("expert", "macca-omar"), "pearson_per_agent"] == "0.300 0.400 0.500"
    # beside MACCA's columns, the team reward's own correlation with the hidden rewards, for reference
    pearson = tables.build(t).sections[0].frame.set_index("Quality")
    assert str(pearson.at["expert", "team reward (reference)"]) == "0.90"


def test_a_win_rate_suite_slots_into_table2(small_cfg):
    """Table 2 reads every env whose metric is win_rate: adding one to the registry and the tier
    fills it, with no code change (the env entry is all the aggregator needs)."""
    assert not spec.resolve(small_cfg, "table2").active
    small_cfg["environments"]["5m_vs_6m"] = {"suite": "smax", "task": "5m_vs_6m", "team": ["a"], "others": "none",
                                             "metric": "win_rate"}
    small_cfg["tiers"]["smoke"]["envs"].append("5m_vs_6m")
    t = spec.resolve(small_cfg, "table2")
    assert t.rows == [("5m_vs_6m", "expert"), ("5m_vs_6m", "medium")]
    F.fill_table(small_cfg, t, lambda e, q, a, s: 0.25 * s + (0.5 if a.startswith("macca") else 0))
    built = tables.build(t)
    md = tables.render(t.title, t.caption(), built.sections, built.notes, "md")
    assert "win rate: mean ± std" in md and "0.25 ± 0.25" in md and "**0.75 ± 0.25**" in md
    # table 1 still holds the MPE rows only
    assert spec.resolve(small_cfg, "table1").rows == [("cn", "expert"), ("cn", "medium")]


def test_table_config_errors_name_the_field(small_cfg):
    cfg = copy.deepcopy(small_cfg)
    cfg["tables"]["table6"]["rows"]["9"] = "macca-omar-l2-9"
    with pytest.raises(ConfigError, match=r"tables\.table6\.rows.*macca-omar-l2-9"):
        spec.resolve(cfg, "table6")
    cfg = copy.deepcopy(small_cfg)
    cfg["tables"]["table1"]["improvement"] = {"macca-omar": "qmix"}
    with pytest.raises(ConfigError, match=r"tables\.table1\.improvement.*'qmix'"):
        spec.resolve(cfg, "table1")
    cfg = copy.deepcopy(small_cfg)
    del cfg["tiers"]["smoke"]["train_seeds"]
    with pytest.raises(ConfigError, match=r"tiers\.smoke\.train_seeds"):
        spec.resolve(cfg, "table1")
    with pytest.raises(ConfigError, match="unknown table 'table33'"):
        spec.resolve(small_cfg, "table33")
    # schema: a wrong kind or a misspelt field is caught by the config check, with the field's path
    cfg = copy.deepcopy(small_cfg)
    cfg["tables"]["table6"]["kind"] = "sweeps"
    with pytest.raises(ConfigError, match=r"tables\.table6\.kind"):
        C.check(cfg)
    cfg = copy.deepcopy(small_cfg)
    cfg["tables"]["table7"]["measure"] = ["score"]
    with pytest.raises(ConfigError, match=r"tables\.table7\.measure.*misspelt"):
        C.check(cfg)


# ---- figures -----------------------------------------------------------------------------------------

def _png_ok(path: Path, min_size=(300, 200)) -> None:
    import matplotlib.image
    img = matplotlib.image.imread(path)
    assert img.shape[1] >= min_size[0] and img.shape[0] >= min_size[1], img.shape
    assert img[..., :3].std() > 0.05, f"{path} looks blank"
    assert path.with_suffix(".pdf").read_bytes()[:5] == b"%PDF-"


def test_figures_from_fixture_runs(small_cfg, tmp_path):
    for name in ("table1", "table6", "recovery"):
        t = spec.resolve(small_cfg, name)
        for k in t.runs():
            F.write_run(small_cfg, k.env, k.quality, k.algo, k.seed, 10.0 * k.seed, recovery=0.5)
    out = tmp_path / "figures"
    figures.curves(spec.resolve(small_cfg, "table1"), out / "curves_table1.png")
    figures.curves(spec.resolve(small_cfg, "table6"), out / "curves_table6.png")
    figures.masks_figure(png=out / "figure4_masks.png", **spec.masks_job(small_cfg))
    figures.recovery_scatter(spec.resolve(small_cfg, "recovery"), out / "recovery_scatter.png")
    for name in ("curves_table1", "curves_table6", "figure4_masks", "recovery_scatter"):
        _png_ok(out / f"{name}.png")
    # Figure 4 needs masks.npz; a run without one is named
    m = small_cfg["tables"]["figures"]["masks"]
    (F.results_dir(small_cfg) / "runs" / m["env"] / m["quality"] / m["algo"] / "seed1/masks.npz").unlink()
    with pytest.raises(RunError, match=r"seed1/masks.npz: is missing"):
        figures.masks_figure(png=out / "again.png", **spec.masks_job(small_cfg))


def test_mean_band_is_the_bootstrap_interval_of_the_mean():
    import pandas as pd
    df = pd.DataFrame({"g": ["a", "a", "b"], "loop_steps": [0, 0, 0], "v": [0.0, 1.0, 5.0]})
    band = figures.mean_band(df, ["g", "loop_steps"], "v").set_index("g")
    assert tuple(band.loc["a", ["mean", "low", "high"]]) == (0.5, 0.0, 1.0)
    assert tuple(band.loc["b", ["mean", "low", "high"]]) == (5.0, 5.0, 5.0)


# ---- the smoke tier through Snakemake, with the real training stage -------------------------------------

def _unregistered_algorithms(cfg) -> list[str]:  # algorithms the tables name but the config lacks
    names = set()
    for name in spec.table_names(cfg):
        entry = cfg["tables"][name]
        rows = entry.get("rows", {}) if entry["kind"] in ("sweep", "variants") else {}   # hparams rows: fields
        names |= set(entry.get("algos", [])) | set(rows.values())
    names.add(cfg["tables"]["figures"]["masks"]["algo"])
    return sorted(n for n in names if n not in cfg.get("algorithms", {}))


def test_every_algorithm_the_tables_name_is_registered(base_config):
    assert _unregistered_algorithms(base_config) == []


@pytest.mark.slow
def test_smoke_tier_builds_every_table_and_figure_through_snakemake(smoke):
    """`snakemake all` at the smoke tier (the shared conftest run) made every table and figure."""
    cfg = C.load(ROOT / "config/config.yaml", {"tier": "smoke", "results": str(smoke.parent / "{tier}")})
    out = smoke
    for t in spec.tables(cfg):
        for ext in ("csv", "md", "tex", "html"):
            assert (out / "tables" / f"{t.name}.{ext}").stat().st_size > 0
        assert "PARTIAL" not in (out / "tables" / f"{t.name}.md").read_text()
    for png in (out / "figures").glob("*.png"):
        _png_ok(png, (200, 150))
    assert (out / "figures/curves_table1.png").exists() and (out / "figures/figure4_masks.png").exists()
    assert (out / "report.html").stat().st_size > 100_000
    # the StarCraft-like tables from SMAX runs, named as SMAX, never as SMAC; the paper's SMAC
    # ablations on the SMAX map the tier has
    for name in ("table2", "table5"):
        md = (out / "tables" / f"{name}.md").read_text()
        assert "| 2s3z (SMAX)" in md and "SMAX (jaxmarl 0.2.0)" in md
        frame = pd.read_csv(out / "tables" / f"{name}.csv")
        rates = frame[frame.env == "2s3z"]["mean"]
        assert len(rates) == 2 * len(spec.resolve(cfg, name).algos) and rates.between(0, 1).all()   # medium, expert
    for name in ("table7", "table10", "table11"):
        assert "MACCA-OMAR on 2s3z (SMAX)" in (out / "tables" / f"{name}.md").read_text()


def test_timing_sums_benchmark_files_per_stage_and_algorithm(tmp_path):
    """`aggregate timing`: which stage dominates a tier, from the files Snakemake's benchmark: writes."""
    from maccabench.aggregate.timing import job_times, stage_summary
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    for rel, s in {"behavior/cn/seed0.tsv": 100.0, "collect/cn/expert/seed0.tsv": 20.0,
                   "train/cn/expert/omar/seed0.tsv": 30.0, "train/cn/expert/omar/seed1.tsv": 50.0,
                   "train/pp/medium/macca-omar/seed0.tsv": 200.0}.items():
        f = tmp_path / "benchmarks" / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(header + f"{s}\t0:00:00\t1\t1\t1\t1\t0\t0\t0\t{s}\n")
    summary = stage_summary(job_times(tmp_path), cores=2)
    omar = summary.loc[("train", "omar")]
    assert (omar["jobs"], omar["job_s"], omar["mean_s"]) == (2, 80.0, 40.0)
    assert summary.loc[("train", "macca-omar"), "share_%"] == 50.0          # 200 of 400 job-seconds
    assert summary.loc[("all", ""), "min_wall_min"] == round(400 / 2 / 60, 1)
    with pytest.raises(Exception, match="no benchmark files"):
        job_times(tmp_path / "empty")


# ---- the credit-versus-scale table ----------------------------------------------------------------

# chosen final scores per algorithm (seeds 0, 1, 2), the same at both qualities: (b) R / N is the reference
CREDIT_SCORES = {"omar": [10, 10, 10], "omar-mean": [1, 2, 3], "omar-gt": [50, 60, 70], "macca-omar": [2, 3, 4],
                 "macca-omar-xn": [9, 11, 12], "omar-split": [0, 0, 0],
                 "icql": [3, 2, 1], "icql-mean": [2, 2, 2], "icql-gt": [1, 2, 3], "macca-cql": [2, 2, 2],
                 "macca-cql-xn": [5, 5, 5], "icql-split": [-1, 2, 2]}


def test_credit_table_compares_every_reward_with_r_over_n(small_cfg, tmp_path):
    t = spec.resolve(small_cfg, "credit")
    assert t.rows == [("cn", "expert"), ("cn", "medium")]
    assert t.algos == list(CREDIT_SCORES)
    assert set(t.improvement) == {(a, "omar-mean") for a in CREDIT_SCORES if a.startswith(("omar", "macca-omar")) and a != "omar-mean"} | \
        {(a, "icql-mean") for a in CREDIT_SCORES if a.startswith(("icql", "macca-cql")) and a != "icql-mean"}
    F.fill_table(small_cfg, t, lambda env, q, algo, seed: CREDIT_SCORES[algo][seed])
    built = tables.build(t)
    df = built.long
    cell = df[(df.env == "cn") & (df.quality == "expert")].set_index("algo")
    assert cell.at["omar", "p_improvement"] == 1.0                         # [10]*3 vs [1, 2, 3]
    assert cell.at["macca-omar", "p_improvement"] == pytest.approx(7 / 9)  # [2,3,4] vs [1,2,3]: 6 wins, 2 ties
    assert cell.at["omar-split", "p_improvement"] == 0.0
    assert cell.at["icql-split", "p_improvement"] == pytest.approx(2 / 6)  # [-1,2,2] vs [2]*3: 0 wins, 6 ties of 9
    assert cell.at["macca-cql", "improves_on"] == "icql-mean" and cell.at["macca-cql", "p_improvement"] == 0.5
    assert cell.at["omar-gt", "iqm"] == pytest.approx(60.0)
    agg = df[df.env == "all"].set_index("algo")
    assert agg.at["macca-omar-xn", "p_improvement"] == 1.0
    assert agg.at["macca-omar", "iqm_low"] <= agg.at["macca-omar", "iqm"] <= agg.at["macca-omar", "iqm_high"]
    md = tables.write(built, tmp_path / "tables")["md"].read_text()
    assert "P(MACCA-OMAR xN > OMAR R/N)" in md and "P(I-CQL split > I-CQL R/N)" in md
    assert "interquartile mean" in md


def test_scores_table_rows_can_be_limited_to_named_envs(small_cfg):
    """`envs:` keeps the rows to the named envs among the tier's, whatever else has the metric."""
    small_cfg["environments"]["cn-copy"] = copy.deepcopy(small_cfg["environments"]["cn"])
    small_cfg["tiers"]["smoke"]["envs"].append("cn-copy")
    del small_cfg["tables"]["table1"]["envs"]   # without `envs:`, every env of the tier with the metric
    assert {e for e, _ in spec.resolve(small_cfg, "table1").rows} == {"cn", "cn-copy"}
    assert {e for e, _ in spec.resolve(small_cfg, "credit").rows} == {"cn"}
    small_cfg["tables"]["credit"]["envs"] = ["cn", "cn-credti"]
    with pytest.raises(ConfigError, match=r"tables\.credit\.envs.*cn-credti"):
        spec.resolve(small_cfg, "credit")


# ---- normalised scores whose references are within noise ------------------------------------------------

# the smoke tier's CN references: the expert is not clearly better than the random policy
NOISY_REFS = {"random": {"mean": -74.79, "std": 29.48, "episodes": 10}, "expert": {"mean": -75.60, "std": 20.12, "episodes": 10}}
WHY = "S_expert - S_random = -0.81 does not exceed 2 combined standard errors (23.79)"


def test_references_within_noise_give_no_score_and_say_why(tmp_path):
    from maccabench import runfolder
    from maccabench.behavior.checkpoints import undefined_score_reason
    why = undefined_score_reason(NOISY_REFS)
    # se = std / sqrt(n - 1) (std measured with ddof=0): sqrt(29.48^2 + 20.12^2) / 3 = 11.90; 2 se = 23.79
    assert why.startswith(WHY) and "over 10 episodes" in why
    clear = {"random": NOISY_REFS["random"], "expert": {**NOISY_REFS["expert"], "mean": -74.79 + 24.0}}
    assert undefined_score_reason(clear) is None                                   # 24.0 > 23.79
    assert undefined_score_reason({"random": NOISY_REFS["random"], "expert": {**clear["expert"], "mean": -74.79 + 23.5}})
    one = {q: {**r, "episodes": 1, "std": 0.0} for q, r in clear.items()}
    assert "reference_episodes >= 2" in undefined_score_reason(one)
    # the run folder: returns kept, no score, the reason in final.json, empty cells in metrics.csv
    assert runfolder.normalized_score(-60.0, -74.79, -75.60, why) is None
    assert runfolder.normalized_score(-60.0, -50.0, -10.0) == pytest.approx(-25.0)   # the normal case
    rows = [{"updates": u, "loop_steps": 100 * u, "wall_s": 1.0, "eval/return_mean": -60.0 + u, "eval/return_std": 2.0, "eval/episodes": 10,
             "eval/normalized_score": runfolder.normalized_score(-60.0 + u, -74.79, -75.60, why), "eval/win_rate": None}
            for u in (0, 10)]
    final = runfolder.final_record(env="cn", quality="expert", algo="omar", seed=0, tier="smoke", metric="normalized_score",
                                   table_score="final", rows=rows, s_random=-74.79, s_expert=-75.60, wall_s=1.0,
                                   score_undefined=why)
    runfolder.write_metrics(tmp_path, rows)
    runfolder.write_final(tmp_path, final)
    final = json.loads((tmp_path / "final.json").read_text())
    assert final["normalized_score_undefined"] == why
    assert final["final"]["normalized_score"] is None and final["final"]["return_mean"] == -50.0
    assert final["best"]["updates"] == 10                                          # no score: the last evaluation
    metrics = (tmp_path / "metrics.csv").read_text().splitlines()
    assert metrics[1].split(",")[3:7] == ["-60.0", "2.0", "10", ""]   # return, std, episodes, no score
    defined = runfolder.final_record(env="cn", quality="expert", algo="omar", seed=0, tier="smoke",
                                     metric="normalized_score", table_score="final", rows=rows[:1],
                                     s_random=-50.0, s_expert=-10.0, wall_s=1.0)
    assert defined["normalized_score_undefined"] is None


def test_undefined_scores_are_marked_and_left_out_of_every_statistic(small_cfg, tmp_path):
    t = spec.resolve(small_cfg, "table1")
    fill_scores(small_cfg, t)
    for algo in t.algos:   # CN medium: the behaviour stage found its references within noise
        for s in t.seeds:
            F.write_run(small_cfg, "cn", "medium", algo, s, SCORES["medium", algo][s], score_undefined=WHY)
    out = tmp_path / "tables"
    paths = tables.write(tables.build(t), out)
    df = tables.read_csv(paths["csv"])
    med = df[df.quality == "medium"].set_index("algo")
    assert (med["n_seeds"] == 0).all() and (med["n_undefined"] == 3).all() and (med["score_undefined"] == WHY).all()
    assert med["mean"].isna().all() and med.loc["macca-omar", "p_improvement"] != med.loc["macca-omar", "p_improvement"]
    # the pooled row and P(X > Y) over tasks are those of the expert cell alone, as if medium did not exist
    agg = df[df.env == "all"].set_index("algo")
    assert agg.at["icql", "iqm"] == pytest.approx(stats.iqm([10, 20, 60])) and agg.at["icql", "n_seeds"] == 3
    assert agg.at["icql", "n_undefined"] == 3
    assert agg.at["macca-cql", "p_improvement"] == pytest.approx(6 / 9)
    expert = df[df.quality == "expert"].set_index("algo")
    assert expert.at["icql", "mean"] == pytest.approx(30.0) and expert.at["icql", "n_undefined"] == 0
    md = paths["md"].read_text()
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in md.splitlines() if line.startswith("| CN ")]
    medium_rows = [r[2:] for r in rows if r[1] == "medium"]
    assert len(medium_rows) == 3   # mean ± std, IQM, P(X > Y)
    assert all(c == tables.UNDEFINED for r in medium_rows for c in r), medium_rows
    assert "5347" not in md and "| CN    | expert    | 30.0 ± 26.5" in md
    assert f"{tables.UNDEFINED}: no normalised score" in md and f"CN medium: {WHY}" in md
    assert "left out of every statistic" in md
    assert tables.UNDEFINED in paths["html"].read_text() and tables.UNDEFINED in paths["tex"].read_text()
    # the side-by-side version reads the CSV and marks the same cells
    paper = tables.load_paper_values(ROOT / "config/paper_values.yaml")
    sbs = tables.side_by_side(t, tables.read_csv(paths["csv"]), paper)
    row = sbs.long.set_index("Quality").loc["medium"]
    assert row["MACCA-OMAR (ours)"] == tables.UNDEFINED and row["MACCA-OMAR (paper)"] != tables.UNDEFINED
    assert sbs.long.set_index("Quality").loc["expert", "I-CQL (ours)"] == "30.0 ± 26.5"
    assert any(f"CN medium: {WHY}" in n for n in sbs.notes)


def test_undefined_scores_in_variant_and_sweep_tables_and_figures(small_cfg, tmp_path):
    t7, t6 = spec.resolve(small_cfg, "table7"), spec.resolve(small_cfg, "table6")
    for t in (t7, t6):
        for _, algo in t.rows:
            for s in t.seeds:
                F.write_run(small_cfg, t.env, t.quality, algo, s, 10.0 * s, rho_sr=(1, 0.25), score_undefined=WHY)
    built = tables.build(t7)
    md = tables.render(t7.title, t7.caption(), built.sections, built.notes, "md")
    row = next(line for line in md.splitlines() if line.startswith("| 0.1 "))
    # the score is marked; the causal diagnostics of the same runs are still numbers
    assert [c.strip() for c in row.strip("|").split("|")][2:4] == [tables.UNDEFINED, "0.25 ± 0.00"]
    built = tables.build(t6)
    md = tables.render(t6.title, t6.caption(), built.sections, built.notes, "md")
    row = next(line for line in md.splitlines() if line.startswith("| 0.5 "))
    assert f"{tables.UNDEFINED} (" in row and "loop steps" in md     # density kept, columns still say when
    assert f"{t6.label(t6.env)} {t6.quality}: {WHY}" in md
    out = tmp_path / "figures"
    for p in figures.curves(t6, out / "curves_table6.png") + figures.curves(t7, out / "curves_table7.png"):
        assert p.exists()


def test_figures_when_no_run_has_a_score(small_cfg, tmp_path):
    """The smoke tier's case: every reference pair within noise; figures still drawn, marked."""
    for name in ("table1", "recovery"):
        t = spec.resolve(small_cfg, name)
        for k in t.runs():
            F.write_run(small_cfg, k.env, k.quality, k.algo, k.seed, 5.0, recovery=0.5, score_undefined=WHY)
    out = tmp_path / "figures"
    figures.curves(spec.resolve(small_cfg, "table1"), out / "curves_table1.png")
    figures.recovery_scatter(spec.resolve(small_cfg, "recovery"), out / "recovery_scatter.png")
    for name in ("curves_table1", "recovery_scatter"):
        _png_ok(out / f"{name}.png")


# ---- the anchor and the regenerated hyper-parameter tables (issue 14 items 4, 6) ------------------

ANCHOR = {"anchor-omar": [100, 110, 120], "anchor-icql": [90, 95, 100], "maicq": [5, 6, 7]}


def test_anchor_table_beside_omars_published_scores(base_config, tmp_path):
    cfg = F.fixture_config(base_config, tmp_path, seeds=(0, 1, 2), envs=["cn", "pp"], qualities=["expert", "random"])
    t = spec.resolve(cfg, "anchor")
    assert t.rows == [("cn", "expert"), ("cn", "random")]                # envs: [cn] keeps pp out
    assert spec.resolve(cfg, "table1").rows[-1] == ("pp", "random")      # Table 1 keeps both
    F.fill_table(cfg, t, lambda env, q, algo, seed: ANCHOR[algo][seed] - (50 if q == "random" else 0))
    out = tmp_path / "tables"
    df = tables.read_csv(tables.write(tables.build(t), out)["csv"])
    cell = df[(df.env == "cn") & (df.quality == "random")].set_index("algo")
    assert cell.at["anchor-omar", "mean"] == 60.0 and cell.at["maicq", "std"] == pytest.approx(1.0)
    paper = tables.load_paper_values(ROOT / "config/paper_values.yaml")
    sbs = tables.side_by_side(t, tables.read_csv(out / "anchor.csv"), paper)
    md = tables.write_side_by_side(sbs, out)["md"].read_text()
    expert, random = sbs.long.iloc[0], sbs.long.iloc[1]
    assert expert["OMAR (individual rewards) (paper)"] == "114.9 ± 2.6" and expert["OMAR (individual rewards) (ours)"] == "110.0 ± 10.0"
    assert random["MA-CQL (individual rewards) (paper)"] == "24.0" and random["MA-ICQ (paper)"] == "6.3"
    assert "OMAR" in paper["anchor"]["source"] and paper["anchor"]["source"] in md    # cited as OMAR's, not MACCA's
    assert "114.9" not in (out / "anchor.md").read_text()
    assert "published in the OMAR paper (Table 1)" in md and "MACCA paper" not in md


def _write_resolved_config(cfg, key):
    """config.yaml as the training stage records it: the resolved job of this run."""
    job = C.train_job(cfg, key.env, key.quality, key.algo, key.seed).to_dict()
    (key.folder(F.results_dir(cfg)) / "config.yaml").write_text(yaml.safe_dump({**job, "device": "cpu", "threads": 1}))


def test_tables_3_and_4_are_read_from_the_runs_config(base_config, tmp_path):
    cfg = F.fixture_config(base_config, tmp_path, seeds=(0, 1), envs=["cn", "pp"], qualities=["expert", "random"])
    cfg["backbones"]["omar"]["by_env"]["pp"] = {"omar_tau": 0.5}     # a task-level value must show as such
    out = tmp_path / "tables"
    paper = tables.load_paper_values(ROOT / "config/paper_values.yaml")
    built = {}
    for name in ("table3", "table4"):
        t = spec.resolve(cfg, name)
        F.fill_table(cfg, t, lambda *a: 1.0)
        for key in t.runs():
            _write_resolved_config(cfg, key)
        built[name] = tables.read_csv(tables.write(tables.build(t), out)["csv"])
        tables.write_side_by_side(tables.side_by_side(t, built[name], paper), out)
    t4 = built["table4"].set_index(["parameter", "quality"])["value"]
    assert t4["CQL α", "expert"] == "5" and t4["CQL α", "random"] == "1"          # Table 4 at the backbone
    assert t4["OMAR τ", "expert"] == "0.9 (CN); 0.5 (PP)"                          # the task layer, named
    assert t4["MACCA λ1", "random"] == "1e-07" and t4["MACCA h", "expert"] == "0.1"
    t3 = built["table3"].set_index("parameter")["value"]
    smoke = cfg["tiers"]["smoke"]
    assert t3["batch size"] == str(smoke["train_batch_size"]) and t3["discount"] == "0.95"
    assert t3["evaluation interval (loop steps)"] == str(smoke["eval_every"] * 100)
    assert t3["learning rate (causal model)"] == "0.0003"
    sbs = (out / "table4_vs_paper.md").read_text()
    assert "0.99" in sbs and "5e-02" not in (out / "table4.md").read_text()


def test_a_table_envs_entry_must_name_an_env(small_cfg):
    small_cfg["tables"]["anchor"]["envs"] = ["cnn"]
    with pytest.raises(ConfigError) as e:
        spec.resolve(small_cfg, "anchor")
    assert e.value.field == "tables.anchor.envs" and "cnn" in str(e.value)


def test_smoke_dag_contains_the_anchor_table(tmp_path, base_config):
    """`snakemake -n anchor` at the smoke tier: the anchor table, its side-by-side version and its
    runs (OMAR and I-CQL on the individual rewards, with and without OMAR's input BatchNorm, MA-ICQ,
    on CN at every quality of the tier)."""
    r = subprocess.run([sys.executable, "-m", "snakemake", "-n", "anchor", "all", "--cores", "1", "--config", "tier=smoke",
                        f"results={tmp_path}/{{tier}}"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    for name in ("anchor", "anchor_vs_paper", "anchor_bn", "table3", "table4"):
        assert f"smoke/tables/{name}.csv" in r.stdout, name
    for algo in ("anchor-omar", "anchor-icql", "maicq", "anchor-omar-nobn", "anchor-icql-nobn"):
        for q in base_config["tiers"]["smoke"]["qualities"]:
            assert f"smoke/runs/cn/{q}/{algo}/seed0/final.json" in r.stdout, (algo, q)


def test_a_tier_that_lists_its_tables_trains_only_the_runs_they_read(tmp_path):
    """`snakemake runs` at quick (CN and SMAX 2s3z at random, medium, expert; tables 1, 2, 5, 9, ...):
    Table 1 has CN rows at every quality, but no SMAX table reads random data, so no 2s3z run on it
    is scheduled (its dataset still is: `datasets` makes every quality of the tier)."""
    r = subprocess.run([sys.executable, "-m", "snakemake", "-n", "runs", "datasets", "--cores", "1", "--config", "tier=quick",
                        f"results={tmp_path}/{{tier}}"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "quick/runs/cn/random/macca-omar/seed0/final.json" in r.stdout
    assert "quick/runs/2s3z/medium/sqddpg/seed2/final.json" in r.stdout      # Table 5
    assert "quick/runs/2s3z/expert/macca-icq/seed0/final.json" in r.stdout   # Table 2
    assert "quick/runs/2s3z/random/" not in r.stdout
    assert "quick/runs/cn/medium/sqddpg/" not in r.stdout                    # Table 5 reads SMAX rows only
    assert "quick/datasets/team/2s3z/random/seed0.h5" in r.stdout


def test_smac_ablations_run_on_the_first_of_their_envs_the_tier_runs(small_cfg):
    """Tables 7, 10 and 11 (the paper's, on SMAC 5m_vs_6m) take SMAC 5m_vs_6m, else SMAX 5m_vs_6m,
    else SMAX 2s3z, else CN, and their titles say which."""
    tier = small_cfg["tiers"]["smoke"]
    t = spec.resolve(small_cfg, "table7")
    assert (t.env, t.quality, t.metric, t.title) == ("cn", "medium", "normalized_score",
                                                    "Table 7: threshold h sweep, MACCA-OMAR on CN medium")
    tier["envs"].append("2s3z")
    t = spec.resolve(small_cfg, "table10")
    assert (t.env, t.metric, t.title) == ("2s3z", "win_rate", "Table 10: causal graph types, MACCA-OMAR on 2s3z (SMAX) expert")
    assert t.suite_notes and "not SMAC" in t.caption()
    tier["envs"].append("5m_vs_6m")
    assert spec.resolve(small_cfg, "table11").env == "5m_vs_6m"
    assert spec.resolve(small_cfg, "table6").env == "cn"    # an MPE ablation in the paper: stays on CN
    tier["envs"] = ["pp"]
    off = spec.resolve(small_cfg, "table7")
    assert not off.active and "'smac-5m_vs_6m' or '5m_vs_6m' or '2s3z' or 'cn'" in off.inactive_reason
    small_cfg["tables"]["table7"]["env"] = ["5m_vs_6m", "5m_vs_6n"]
    with pytest.raises(ConfigError, match=r"5m_vs_6n") as e:
        spec.resolve(small_cfg, "table7")
    assert e.value.field == "tables.table7.env[1]"
