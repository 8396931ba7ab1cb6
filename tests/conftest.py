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
