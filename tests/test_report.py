"""The HTML report: `snakemake report` on fixture run folders (tests/aggregate_fixtures.py) builds
every table and figure, then Snakemake's report; Debian's chromium opens it headless and a small
driver (tests/report_driver.js) clicks through it as a reader would, so the test sees what is
really rendered: the categories, every table and figure with its caption, the tables' contents.

Needs `chromium` (Debian: `apt-get install -y chromium`); skipped without it unless
MACCABENCH_REQUIRE_BROWSER=1 (CI), which makes a missing browser a failure."""
import base64
import html
import json
import os
import re
import shutil
import subprocess
import tempfile
import urllib.parse
from pathlib import Path

import pytest
import yaml

import aggregate_fixtures as F
from conftest import ROOT
from maccabench.aggregate import spec

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
AGGREGATE_RULES = ["aggregate_table", "aggregate_vs_paper", "aggregate_curves", "aggregate_masks",
                   "aggregate_recovery_scatter", "aggregate_outputs", "report"]


def need_browser():
    if CHROMIUM is None:
        if os.environ.get("MACCABENCH_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium not found but MACCABENCH_REQUIRE_BROWSER=1 (apt-get install -y chromium)")
        pytest.skip("chromium not installed (Debian: apt-get install -y chromium)")


@pytest.fixture(scope="module")
def built(tmp_path_factory, base_config):
    """Fixture runs for every table of the smoke tier (2 seeds), then `snakemake report` with only the
    aggregation rules allowed (the runs stand in for the training stage)."""
    root = tmp_path_factory.mktemp("report")
    cfg = F.fixture_config(base_config, root, seeds=(0, 1))
    for t in spec.tables(cfg):
        for k in t.runs():
            score = 20.0 * (1 + k.seed) + (30.0 if k.algo == "macca-omar" else 0.0) + (5.0 if k.quality == "expert" else 0.0)
            F.write_run(cfg, k.env, k.quality, k.algo, k.seed, score, recovery=0.3 + 0.2 * k.seed)
    cfg_file = root / "config.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg))
    r = subprocess.run(["snakemake", "--cores", "2", "--configfile", str(cfg_file), "--allowed-rules", *AGGREGATE_RULES,
                        "--", "report"], cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return cfg, F.results_dir(cfg)


def test_report_target_builds_every_table_and_figure(built):
    cfg, results = built
    tables = spec.tables(cfg)
    assert {t.name for t in tables} == {"table1", "table2", "table5", "table6", "table7", "table8", "table9", "table10",
                                       "table11", "recovery",
                                       "precision", "precision_backbones", "anchor", "anchor_bn", "credit", "table3", "table4"}
    for t in tables:
        for ext in ("csv", "md", "tex", "html"):
            assert (results / "tables" / f"{t.name}.{ext}").stat().st_size > 0
            if t.paper:
                assert (results / "tables" / f"{t.name}_vs_paper.{ext}").stat().st_size > 0
    curves = [f"curves_{t.name}" for t in tables if t.name in cfg["tables"]["figures"]["curves"]]
    for name in ["figure4_masks", "recovery_scatter"] + curves:
        for ext in ("png", "pdf"):
            assert (results / "figures" / f"{name}.{ext}").stat().st_size > 0, name
    page = (results / "report.html").read_text()
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=[\"']https?:", page), "the report must not load anything"


def chromium(*args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tempfile.mkdtemp(prefix='chromium-')}"]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=timeout)


def with_script(report: Path, script: str, out: Path) -> Path:
    """A copy of the report with a script appended (the report itself stays untouched)."""
    page = report.read_text()
    i = page.rfind("</body>")
    out.write_text(page[:i] + "<script>" + script + "</script>" + page[i:])
    return out


def decode(data_uri: str) -> str:
    header, payload = data_uri.split(",", 1)
    return base64.b64decode(urllib.parse.unquote(payload)).decode() if ";base64" in header else urllib.parse.unquote(payload)


def test_report_renders_in_chromium_with_every_table_and_figure(built, tmp_path):
    need_browser()
    cfg, results = built
    page = with_script(results / "report.html", (ROOT / "tests/report_driver.js").read_text(), tmp_path / "driven.html")
    r = chromium("--virtual-time-budget=60000", "--dump-dom", page.as_uri())
    assert r.returncode == 0, r.stderr[-2000:]
    dom = r.stdout
    i = dom.rfind('<pre id="driver-log">')
    assert i >= 0, "the driver did not finish: " + r.stderr[-2000:]
    log = json.loads(html.unescape(dom[i + len('<pre id="driver-log">'):dom.find("</pre>", i)]))
    assert log["errors"] == []
    assert {"Tables", "Tables vs paper", "Figures"} <= set(log["menu"])
    subs = {c["category"]: set(c["subcategories"]) for c in log["categories"]}
    assert subs["Tables"] == {"Main results", "Ablations", "Reward recovery", "Anchor (OMAR's published numbers)",
                              "Hyper-parameters used"}
    assert subs["Figures"] == {"Learning curves", "Figure 4: causal structure", "Reward recovery"}

    shown = {(r["category"], r["labels"][0]): r for r in log["results"]}
    for t in spec.tables(cfg):
        res = shown[("Tables", t.name)]
        assert res["shown"]["kind"] == "iframe"
        table_html = decode(res["shown"]["src"])
        assert html.escape(t.title) in table_html and "<table" in table_html
        assert t.title in res["caption"] and "Tier smoke" in res["caption"]
        if t.paper:
            paper = shown[("Tables vs paper", t.name)]
            cited = yaml.safe_load((ROOT / "config/paper_values.yaml").read_text())[t.paper].get("cited_as", "the MACCA paper")
            assert "(paper)" in decode(paper["shown"]["src"]) and f"published in {cited}" in paper["caption"]
    # the main table's content as rendered: MACCA-OMAR best (bold) in every row
    table1 = decode(shown[("Tables", "table1")]["shown"]["src"])
    rows = len(next(t for t in spec.tables(cfg) if t.name == "table1").rows)   # (env, quality) cells of the tier
    assert table1.count("<b>") >= rows and "<b>65.0 ± 14.1</b>" in table1      # CN expert: seeds 20+30+5, 40+30+5
    for label in ["curves of table1", "curves of table6", "Figure 4 mask heat-maps", "reward recovery vs score"]:
        fig = shown[("Figures", label)]
        assert fig["shown"]["kind"] == "img" and fig["shown"]["src"].startswith("data:image/png")
        assert fig["shown"]["width"] > 300, f"{label} did not render"
        assert "Tier smoke" in fig["caption"] or "tier smoke" in fig["caption"]


SHOW_TABLE1 = """
(async function () {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const byText = (label) => [...document.querySelectorAll("#app nav a")].find((a) => a.textContent.trim() === label);
  await sleep(300);
  byText("Tables").click(); await sleep(100);
  byText("Main results").click(); await sleep(100);
  document.querySelector("#app nav table tbody tr td:last-child a").click();
})();
"""


def test_report_screenshot_shows_table1(built, tmp_path):
    """A screenshot of the report with Table 1 open (kept in the test's tmp folder for a look)."""
    need_browser()
    import matplotlib.image
    _, results = built
    page = with_script(results / "report.html", SHOW_TABLE1, tmp_path / "table1.html")
    shot = tmp_path / "report_table1.png"
    r = chromium("--virtual-time-budget=10000", "--window-size=1400,1000", f"--screenshot={shot}", page.as_uri())
    assert r.returncode == 0 and shot.exists(), r.stderr[-2000:]
    img = matplotlib.image.imread(shot)[..., :3]
    assert img.shape[:2] == (1000, 1400)
    content = img[:, 450:]            # right of the navigation bar: the table shown in an iframe
    dark = (content.mean(axis=2) < 0.3).mean()
    assert 0.005 < dark < 0.5, f"the table area looks empty or black ({dark:.3f} dark pixels)"
    print(f"screenshot: {shot}")
