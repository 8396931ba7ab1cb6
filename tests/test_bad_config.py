"""A table of malformed configurations: each is one small edit of the real config/config.yaml and
must fail before any job, through the real CLI (`check-config`, exit code 2, no traceback) and
through Snakemake, with a message naming the dotted config field and a fix.

Cases the code does not handle yet are xfail(strict=True): they turn into failures once fixed, so
the mark is removed then.
"""
from __future__ import annotations

import copy
import re
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT
from maccabench.cli import main as cli_main
from maccabench.errors import ConfigError
from maccabench.yamlfile import DuplicateKeyError, YamlSyntaxError, read_strict

BASE_TEXT = (ROOT / "config/config.yaml").read_text()
BASE = yaml.safe_load(BASE_TEXT)


# ---- edits: each returns the text of the malformed file ------------------------------------------

def _walk(cfg, path):
    keys = path.split(".") if isinstance(path, str) else list(path)
    for k in keys[:-1]:
        cfg = cfg[k]
    return cfg, keys[-1]


def put(path, value):
    """Set the field at `path` (dotted, or a tuple where a key holds a dot)."""
    def edit():
        cfg = copy.deepcopy(BASE)
        parent, key = _walk(cfg, path)
        parent[key] = value
        return yaml.safe_dump(cfg, sort_keys=False)
    return edit


def drop(path):
    def edit():
        cfg = copy.deepcopy(BASE)
        parent, key = _walk(cfg, path)
        del parent[key]
        return yaml.safe_dump(cfg, sort_keys=False)
    return edit


def rename(path, new_key):
    """A misspelt key: same value under another name."""
    def edit():
        cfg = copy.deepcopy(BASE)
        parent, key = _walk(cfg, path)
        parent[new_key] = parent.pop(key)
        return yaml.safe_dump(cfg, sort_keys=False)
    return edit


def text(old, new):
    """An edit of the file's text (for what a dict cannot hold: duplicates, syntax, YAML's own reading)."""
    def edit():
        assert BASE_TEXT.count(old) == 1, f"the edit's anchor {old!r} must occur once in config/config.yaml"
        return BASE_TEXT.replace(old, new)
    return edit


def line_of(old):
    return BASE_TEXT[:BASE_TEXT.index(old)].count("\n") + 1


CN_BLOCK = BASE_TEXT[BASE_TEXT.index("  cn:\n"):BASE_TEXT.index("  pp:\n")]
PP_AS_CN = BASE_TEXT[BASE_TEXT.index("  pp:\n"):BASE_TEXT.index("  world:\n")].replace("  pp:\n", "  cn:\n")

TODO_BAD_INDENT = ("PyYAML stops at the line after the mis-indented one (43:3) and names line 42 only as where the "
                   "block starts; yamlfile._syntax_error would have to point at the context mark")


def todo(reason):
    return pytest.mark.xfail(strict=True, reason=reason)


# (id, edit, field the message must name, extra text it must contain, marks)
CASES = [
    # environments
    ("env-team-unknown-agent", put("environments.pp.team", ["adversary_0", "adversary_1", "predator_7"]),
     "environments.pp.team", "predator_7", ()),
    ("env-team-empty", put("environments.cn.team", []), "environments.cn.team", "", ()),
    ("env-team-repeated-agent", put("environments.cn.team", ["agent_0", "agent_0", "agent_1"]),
     "environments.cn.team", "", ()),
    ("env-missing-suite", drop("environments.cn.suite"), "environments.cn.suite", "", ()),
    ("env-unknown-suite", put("environments.cn.suite", "starcraft"), "environments.cn.suite", "mpe", ()),
    ("env-unknown-task", put("environments.cn.task", "simple_spred_v3"), "environments.cn.task",
     "simple_spread_v3", ()),
    ("env-others-none-with-opponents", put("environments.pp.others", "none"), "environments.pp.others", "frozen", ()),
    ("env-others-not-allowed", put("environments.cn.others", "fixed"), "environments.cn.others", "", ()),
    ("env-metric-not-allowed", put("environments.cn.metric", "score"), "environments.cn.metric", "", ()),
    ("env-misspelt-key", rename("environments.cn.team", "tema"), "environments.cn.tema", "", ()),
    ("env-task-args-unknown-key", put("environments.cn.task_args.N_agents", 3),
     "environments.cn.task_args.N_agents", "", ()),
    ("env-task-args-not-mapping", put("environments.cn.task_args", [3]), "environments.cn.task_args", "", ()),
    ("env-none", put("environments", {}), "environments", "", ()),
    ("env-duplicate-entry", text("  world:\n", PP_AS_CN + "  world:\n"), "environments.cn",
     f"line {line_of('  cn:')}", ()),
    # behavior
    ("behavior-gamma-above-1", put("behavior.matd3.gamma", 1.5), "behavior.matd3.gamma", "", ()),
    ("behavior-hidden-text", put("behavior.matd3.hidden", "64"), "behavior.matd3.hidden", "", ()),
    ("behavior-missing-batch-size", drop("behavior.matd3.batch_size"), "behavior.matd3.batch_size", "", ()),
    ("behavior-misspelt-key", rename("behavior.matd3.actor_lr", "actor_learning_rate"),
     "behavior.matd3.actor_learning_rate", "", ()),
    ("behavior-num-envs-zero", put("behavior.num_envs", 0), "behavior.num_envs", "", ()),
    ("behavior-exponent-without-point", text("    actor_lr: 0.001\n", "    actor_lr: 1e-3\n"), "behavior.matd3.actor_lr",
     "decimal point", ()),
    # collection
    ("collection-negative-noise", put("collection.noise", -0.1), "collection.noise", "", ()),
    ("collection-missing-noise", drop("collection.noise"), "collection.noise", "", ()),
    ("collection-misspelt-key", rename("collection.noise", "nosie"), "collection.nosie", "", ()),
    # training
    ("training-table-score-not-allowed", put("training.table_score", "last"), "training.table_score", "best", ()),
    ("training-loop-steps-zero", put("training.loop_steps_per_update", 0), "training.loop_steps_per_update", "", ()),
    ("training-common-gamma-text", put("training.common.gamma", "high"), "training.common.gamma", "", ()),
    ("training-common-misspelt", rename("training.common.hidden", "hiden"), "training.common.hiden", "hidden", ()),
    ("training-common-exponent-without-point", text("    actor_lr: 0.01 ", "    actor_lr: 1e-2 "),
     "training.common.actor_lr", "decimal point", ()),
    # backbones
    ("backbone-per-quality-missing-random", put("backbones.icql.cql_alpha", {"expert": 5.0, "medium": 0.5,
                                                                               "medium-replay": 1.0}),
     "backbones.icql.cql_alpha", "random", ()),
    ("backbone-per-quality-misspelt", put("backbones.icql.cql_alpha", {"expret": 5.0, "medium": 0.5,
                                                                         "medium-replay": 1.0, "random": 1.0}),
     "backbones.icql.cql_alpha.expret", "", ()),
    ("backbone-unknown", rename("backbones.maicq", "maicqq"), "backbones.maicqq", "maicq", ()),
    ("backbone-int-not-float", put("backbones.icql.cql_samples", 2.5), "backbones.icql.cql_samples", "", ()),
    ("backbone-unknown-hyperparameter", put("backbones.omar.omar_temp", 1.0), "backbones.omar.omar_temp", "", ()),
    ("backbone-bool-text", put("backbones.maicq.mixer", "yes"), "backbones.maicq.mixer", "", ()),
    # algorithms
    ("algo-unknown-backbone", put("algorithms.omar.backbone", "omarr"), "algorithms.omar.backbone", "omar", ()),
    ("algo-unknown-rewards", put("algorithms.macca-omar.rewards", "casual"), "algorithms.macca-omar.rewards",
     "causal", ()),
    ("algo-missing-rewards", drop("algorithms.omar.rewards"), "algorithms.omar.rewards", "", ()),
    ("algo-options-unknown", put("algorithms.macca-icq.options", {"mixr": False}),
     "algorithms.macca-icq.options.mixr", "", ()),
    ("algo-reward-option-bad-value", put("algorithms.macca-omar-full.reward_options", {"graph": "fulll"}),
     "algorithms.macca-omar-full.reward_options.graph", "",
     ()),
    ("algo-reward-option-unknown", put("algorithms.macca-omar-h0.reward_options", {"hh": 0.0}),
     "algorithms.macca-omar-h0.reward_options.hh", "", ()),
    ("algo-reward-options-on-team", put("algorithms.omar.reward_options", {"h": 0.1}),
     "algorithms.omar.reward_options", "", ()),
    ("algo-name-uppercase", rename("algorithms.omar", "OMAR"), "algorithms.OMAR", "",
     ()),
    ("algo-raw-dataset-text", put("algorithms.omar-gt.raw_dataset", "yes"), "algorithms.omar-gt.raw_dataset", "", ()),
    # causal
    ("causal-per-quality-missing-random", put("causal.lambda1", {"expert": 7e-3, "medium": 5e-3,
                                                                  "medium-replay": 5e-3}),
     "causal.lambda1", "random", ()),
    ("causal-h-above-1", put("causal.h", 1.5), "causal.h", "",
     ()),
    ("causal-graph-not-allowed", put("causal.graph", "fulll"), "causal.graph", "", ()),
    ("causal-misspelt-key", rename("causal.lambda1", "lamda1"), "causal.lamda1", "",
     ()),
    ("causal-exponent-without-point", text("  lr: 3.0e-4 ", "  lr: 3e-4 "), "causal.lr", "decimal point",
     ()),
    # tiers
    ("tier-unknown-env", put("tiers.smoke.envs", ["cn", "mpe"]), "tiers.smoke.envs", "mpe", ()),
    ("tier-unknown-algo", put("tiers.smoke.algos", ["omar", "omarr"]), "tiers.smoke.algos", "omarr", ()),
    ("tier-unknown-quality", put("tiers.smoke.qualities", ["expert", "good"]), "tiers.smoke.qualities", "", ()),
    ("tier-repeated-seed", put("tiers.smoke.train_seeds", [0, 0]), "tiers.smoke.train_seeds", "", ()),
    ("tier-zero-updates", put("tiers.smoke.train_updates", 0), "tiers.smoke.train_updates", "", ()),
    ("tier-missing-dataset-seeds", drop("tiers.smoke.dataset_seeds"), "tiers.smoke.dataset_seeds", "", ()),
    ("tier-train-dataset-seed-not-collected", put("tiers.smoke.train_dataset_seed", 3),
     "tiers.smoke.train_dataset_seed", "", ()),
    ("tier-override-unknown-env", put("tiers.paper.train_updates_overrides", {"mpe/random": 5}),
     "tiers.paper.train_updates_overrides.mpe/random", "", ()),
    ("precision-not-allowed", put("causal.precision", "fp16"), "causal.precision", "bf16", ()),
    ("tier-precision-is-not-a-tier-field", put("tiers.smoke.causal_precision", "bf16"), "tiers.smoke.causal_precision",
     "", ()),   # precision is one setting for every tier (a tier only scales sizes)
    ("tier-misspelt-key", rename("tiers.smoke.train_updates", "train_update"), "tiers.smoke.train_update", "", ()),
    ("tier-missing-smoke", drop("tiers.smoke"), "tier", "quick, anchor, credit, paper", ()),   # the chosen tier is gone
    ("tier-duplicate-key", text("    train_updates: 20 ", "    train_updates: 20\n    train_updates: 200 "),
     "tiers.smoke.train_updates", f"line {line_of('    train_updates: 20 ')}", ()),
    # tables
    ("table-unknown-algo", put("tables.table1.algos", ["icql", "omarr"]), "tables.table1.algos", "omarr",
     ()),
    ("table-unknown-kind", put("tables.table1.kind", "score"), "tables.table1.kind", "", ()),
    ("table-unknown-env", put("tables.table6.env", "cnn"), "tables.table6.env", "cnn",
     ()),
    ("table-row-unknown-algo", put(("tables", "table7", "rows", "0.1"), "macca-omarr"), "tables.table7.rows.0.1",
     "macca-omarr", ()),
    ("table-quality-not-allowed", put("tables.table7.quality", "good"), "tables.table7.quality", "", ()),
    ("table-missing-title", drop("tables.table1.title"), "tables.table1.title", "", ()),
    ("table-bootstrap-confidence", put("tables.bootstrap.confidence", 1.5), "tables.bootstrap.confidence", "", ()),
    ("table-allow-partial-text", put("tables.allow_partial", "no"), "tables.allow_partial", "", ()),
    ("table-mask-figure-unknown-algo", put("tables.figures.masks.algo", "macca"), "tables.figures.masks.algo",
     "macca", ()),
    ("table-curves-unknown-table", put("tables.figures.curves", ["table1", "table99"]), "tables.figures.curves",
     "table99", ()),
    ("table-improvement-unknown-row", put("tables.table9.improvement", [["MACCA-OMAR", "OMARR"]]),
     "tables.table9.improvement", "OMARR", ()),
    # results
    ("results-missing", drop("results"), "results", "", ()),
    ("results-not-text", put("results", 5), "results", "", ()),
    ("results-unknown-placeholder", put("results", "results/{tierr}"), "results", "{tier}",
     ()),
    # tier (the file's own; these run without --tier / tier=smoke)
    ("tier-field-not-allowed", put("tier", "fast"), "tier", "smoke", ()),
    ("tier-field-missing", drop("tier"), "tier", "", ()),
    # the YAML file itself
    ("yaml-tab-indent", text("    suite: mpe\n    task: simple_spread_v3\n", "    suite: mpe\n\ttask: simple_spread_v3\n"),
     f"config.yaml:{line_of('    task: simple_spread_v3')}:1", "tab", ()),
    ("yaml-unclosed-bracket", text("team: [leadadversary_0, adversary_0, adversary_1, adversary_2]",
                                  "team: [leadadversary_0, adversary_0, adversary_1, adversary_2"),
     "config.yaml:", "bracket", ()),
    ("yaml-bad-indent", text("  hidden: 64               #", " hidden: 64               #"),
     f"config.yaml:{line_of('  hidden: 64               #')}:2", "indent", todo(TODO_BAD_INDENT)),
    ("yaml-top-level-list", lambda: "- tier: smoke\n", "<top level>", "",
     ()),
]

CASES = [(*c[:4], (c[4],) if c[4] else ()) for c in CASES]

WITHOUT_TIER = {"tier-field-not-allowed", "tier-field-missing"}
# Snakemake reads the file with its own loader first (and CLI configfiles before the workflow runs)
SNAKEMAKE_ONLY_TODO = {
    "yaml-tab-indent": "Snakemake parses --configfile before the workflow: 'not valid JSON or YAML', no location",
    "yaml-unclosed-bracket": "Snakemake parses --configfile before the workflow: 'not valid JSON or YAML', no location",
    "yaml-bad-indent": "Snakemake parses --configfile before the workflow: 'not valid JSON or YAML', no location",
    "yaml-top-level-list": "Snakemake: 'Config file must be given as JSON or YAML with keys at top level', no field",
}


def _named(message: str, field: str) -> bool:
    if field.startswith("config.yaml:") or field == "<top level>":
        return field in message
    # the field, optionally with a list index: `tiers.smoke.envs[1]` or `tiers.smoke.qualities.1`
    return re.search("`" + re.escape(field) + r"(\[\d+\]|\.\d+)?`", message) is not None


def _descriptions(node) -> set:
    found = set()
    if isinstance(node, dict):
        if isinstance(node.get("description"), str):
            found.add(node["description"])
        node = list(node.values())
    for child in node if isinstance(node, list) else ():
        found |= _descriptions(child)
    return found


# A schema field's description is what the field means, not how to fix it (issue 15 item 7)
DESCRIPTIONS = _descriptions(yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text()))


def _unhelpful_fix(message: str) -> str | None:
    fix = message.split("Fix:", 1)[1].strip().splitlines()[0].rstrip(".")
    if fix.startswith("see ") and "schema" in fix:
        return f"the fix only points at the schema: {fix!r}"
    if fix in DESCRIPTIONS:
        return f"the fix is the field's description: {fix!r}"
    if re.search(r"\ba (integer|int|object|array)\b", fix):
        return f"typo in the fix: {fix!r}"
    return None


def _params(cases):
    return [pytest.param(*c[:4], marks=c[4], id=c[0]) for c in cases]


@pytest.mark.parametrize("case,edit,field,also", _params(CASES))
def test_check_config_names_the_field(case, edit, field, also, tmp_path, capsys):
    path = tmp_path / "config.yaml"
    path.write_text(edit())
    argv = ["check-config", "--config", str(path)] + ([] if case in WITHOUT_TIER else ["--tier", "smoke"])
    try:
        cli_main(argv)
        pytest.fail("check-config accepted the malformed config")
    except SystemExit as e:
        code = e.code
    except Exception as e:   # what the user would see as a traceback
        pytest.fail(f"traceback instead of a message: {type(e).__name__}: {e}")
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    assert _named(err, field), f"message does not name `{field}`: {err}"
    assert "Fix:" in err, err
    assert not _unhelpful_fix(err), _unhelpful_fix(err)
    assert also.lower() in err.lower(), f"message lacks {also!r}: {err}"


@pytest.mark.parametrize("case", ["env-team-unknown-agent", "tier-unknown-algo"])
def test_exit_code_in_a_real_process(case, tmp_path):
    """The in-process runs above catch SystemExit; prove the exit code and the stderr of a real process."""
    _, edit, field, _, _ = next(c for c in CASES if c[0] == case)
    path = tmp_path / "config.yaml"
    path.write_text(edit())
    r = subprocess.run([sys.executable, "-m", "maccabench", "check-config", "--config", str(path), "--tier", "smoke"],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and "Fix:" in r.stderr and _named(r.stderr, field), r.stderr


_SNAKEMAKE_LOOP = r'''
import contextlib, io, json, sys
from snakemake.cli import main
out = {}
for case, path, with_tier in json.loads(sys.argv[1]):
    buf = io.StringIO()
    with contextlib.redirect_stderr(buf), contextlib.redirect_stdout(buf):
        try:
            # --replace-workflow-config: the file alone is the config (by default Snakemake merges it
            # into config/config.yaml, which would put back every field a case deletes)
            main(["-n", "--configfile", path, "--replace-workflow-config"] + (["--config", "tier=smoke"] if with_tier else []))
            code = 0
        except SystemExit as e:
            code = e.code
        except BaseException as e:
            code, _ = "exception", print(f"{type(e).__name__}: {e}")
    out[case] = [code, buf.getvalue()]
print(json.dumps(out))
'''


def test_snakemake_rejects_every_case_before_any_job(tmp_path):
    """The whole table through `snakemake -n` in one process (a dry run per case in its own process
    costs seconds; here the imports are paid once). Expected failures here are reported, not asserted
    away: the test fails if a case passes that is listed as a known problem, or vice versa."""
    runs = []
    for case, edit, *_ in CASES:
        path = tmp_path / f"{case}.yaml"
        path.write_text(edit())
        runs.append([case, str(path), case not in WITHOUT_TIER])
    import json
    r = subprocess.run([sys.executable, "-c", _SNAKEMAKE_LOOP, json.dumps(runs)], capture_output=True, text=True,
                       cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    results = json.loads(r.stdout.strip().splitlines()[-1])
    wrong, expected_wrong = [], {}
    for case, edit, field, also, marks in CASES:
        code, log = results[case]
        ok = (code not in (0, "exception") and "Building DAG" not in log and "Traceback" not in log
              and _named(log, field) and "Fix:" in log and not _unhelpful_fix(log) and also.lower() in log.lower())
        known = SNAKEMAKE_ONLY_TODO.get(case) or (marks[0].kwargs["reason"] if marks else None)
        if known:
            expected_wrong[case] = ok
        elif not ok:
            wrong.append(f"{case}: exit {code}, does not name `{field}` before any job:\n{log[-800:]}")
    assert not wrong, "\n\n".join(wrong)
    # a known problem that is now handled, or a case that passes only through one of the two paths,
    # needs its mark updated (SNAKEMAKE_ONLY_TODO or the case's xfail)
    fixed = [c for c, ok in expected_wrong.items() if ok]
    assert not fixed, f"now handled under Snakemake, update their marks: {fixed}"


# ---- the strict reader itself (what config.load and common.smk will call) -----------------------

def test_real_config_reads_as_safe_load():
    assert read_strict(ROOT / "config/config.yaml") == BASE


def test_duplicate_key_names_dotted_path_and_both_lines(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(text("  world:\n", PP_AS_CN + "  world:\n")())
    with pytest.raises(DuplicateKeyError) as e:
        read_strict(path)
    second = line_of("  world:\n")   # the copied entry starts where `world:` started
    assert isinstance(e.value, ConfigError) and e.value.field == "environments.cn"
    assert e.value.lines == (line_of("  cn:\n"), second)
    assert f"line {line_of('  cn:')} and line {second}" in str(e.value) and "Fix:" in str(e.value)


@pytest.mark.parametrize("doc,field", [
    ("a: {b: 1, b: 2}\n", "a.b"),                   # flow mapping: same line, columns named
    ("a:\n  - {x: 1}\n  - {x: 1, x: 2}\n", "a[1].x"),  # inside a list
    ("true: 1\nTrue: 2\n", "True"),                 # same key once YAML has read it
])
def test_duplicate_key_anywhere(doc, field, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(doc)
    with pytest.raises(DuplicateKeyError) as e:
        read_strict(path)
    assert e.value.field == field


def test_merge_keys_and_aliases_are_not_duplicates(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  x: 3\ne: *b\n")
    assert read_strict(path) == {"base": {"x": 1, "y": 2}, "d": {"x": 3, "y": 2}, "e": {"x": 1, "y": 2}}


@pytest.mark.parametrize("doc,line,column,words", [
    ("a:\n\tb: 1\n", 2, 1, "tab"),
    ("a: [1, 2\nb: 3\n", 2, 2, "bracket"),
    ("a:\n  b: 1\n c: 2\n", 3, 2, "indent"),
    ("a: b: c\n", 1, 5, "quote"),
    ("a: 1\n---\nb: 2\n", 2, 1, "---"),
])
def test_syntax_error_is_located(doc, line, column, words, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(doc)
    with pytest.raises(YamlSyntaxError) as e:
        read_strict(path)
    message = str(e.value)
    assert (e.value.line, e.value.column) == (line, column)
    assert message.startswith(f"{path}:{line}:{column}: invalid YAML: ") and "Fix:" in message
    assert words in message and message.count("\n") <= 1


def test_exponent_without_point_stays_text_as_in_snakemake(tmp_path):
    """YAML 1.1 (PyYAML, Snakemake's loader) reads 1e-7 as text; the hyper-parameter checks explain it.
    Reading it as a number here would make the CLI and Snakemake disagree."""
    path = tmp_path / "c.yaml"
    path.write_text("a: 1e-7\nb: 1.0e-7\n")
    assert read_strict(path) == {"a": "1e-7", "b": 1e-7}
