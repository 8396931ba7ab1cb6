"""What the `smac` suite (the real StarCraft Multi-Agent Challenge) offers, described without
importing SMAC or starting StarCraft II: the paper's Table 2 maps and their allies (the team; the
enemies are the game's built-in AI), and `installation_problem`, which says what this machine lacks
to play them.

Only for validating a configuration fast (`config.check`). The real environment (envs/smac.py)
reads every size from SMAC's own `get_env_info()` once StarCraft II runs.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from ..registry import SuiteDescription, TaskDescription

# allies per map (SMAC's map table, smac/env/starcraft2/maps/smac_maps.py); agent i is SMAC's agent i
ALLIES = {"2s3z": 5, "5m_vs_6m": 5, "6h_vs_8z": 6, "MMM2": 10}
MAP_DIR = "Maps/SMAC_Maps"
INSTALL = ("install oxwhirl's SMAC with `pip install git+https://github.com/oxwhirl/smac.git`, StarCraft II "
           "(Linux 4.10 package) under $SC2PATH (default ~/StarCraftII), and SMAC's maps under "
           f"$SC2PATH/{MAP_DIR}; see docs/smax.md, 'The real SMAC'")


def agents(map_name: str) -> list[str]:
    return [f"agent_{i}" for i in range(ALLIES[map_name])]


def sc2_path() -> Path:
    """Where StarCraft II is, as SMAC (through pysc2) looks for it."""
    return Path(os.environ.get("SC2PATH", "~/StarCraftII")).expanduser()


def installation_problem(map_name: str) -> tuple[str, str] | None:
    """(What this machine lacks to play `map_name` on the real SMAC, how to install it), or None.
    `import smac` proves nothing: PyPI's `smac` is SMAC3, an unrelated optimiser, and installs the
    same top-level package."""
    problem = _missing(map_name)
    return (problem, INSTALL) if problem else None


def _missing(map_name: str) -> str | None:
    try:
        has_env = importlib.util.find_spec("smac.env") is not None
    except (ImportError, ValueError):   # no `smac` at all, or one that fails to import
        has_env = False
    if not has_env:
        found = importlib.util.find_spec("smac") is not None
        return ("the Python package `smac` here is not oxwhirl's SMAC (it has no `smac.env`; PyPI's `smac` is "
                "SMAC3, an optimiser)" if found else "oxwhirl's SMAC (`smac.env`) is not installed")
    root = sc2_path()
    if not root.is_dir():
        return f"StarCraft II is not at {root} (set SC2PATH to its folder)"
    if not any(p.is_dir() for p in (root / "Versions").glob("Base*")):
        return f"{root} has no Versions/Base* folder: not a complete StarCraft II installation"
    map_file = root / MAP_DIR / f"{map_name}.SC2Map"
    if not map_file.is_file():
        return f"the map file {map_file} is missing (SMAC's maps go under {root / MAP_DIR})"
    return None


SUITE = SuiteDescription(tasks={name: TaskDescription(args={}, agents=lambda a, m=name: agents(m))
                                for name in ALLIES})
