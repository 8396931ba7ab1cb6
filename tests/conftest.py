import copy
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def base_config() -> dict:
    with open(ROOT / "config/config.yaml") as f:
        return yaml.safe_load(f)


@pytest.fixture
def cfg(base_config) -> dict:
    """A fresh copy of the project config, safe to mutate."""
    return copy.deepcopy(base_config)


def snakemake(*args, results, tier="smoke", timeout=2400):
    """Run snakemake from the repository root with outputs under `results`/<tier>."""
    import subprocess
    import sys
    return subprocess.run([sys.executable, "-m", "snakemake", *args, "--cores", "2", "--config", f"tier={tier}",
                           f"results={results}/{{tier}}"], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def smoke(tmp_path_factory) -> Path:
    """results/<tmp>/smoke after the whole smoke tier (`snakemake all`: behaviour, datasets, every
    training run, reward recovery, tables, figures, report). Built once and shared by every
    end-to-end test, so CI pays for the DAG once."""
    results = tmp_path_factory.mktemp("results")
    r = snakemake("all", results=results)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return results / "smoke"
