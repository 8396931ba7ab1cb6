"""What the `smax` suite offers, described without importing jax or jaxmarl: its maps (tasks), each
map's allies (the team; the enemies are the game's built-in heuristic, not agents of ours) and the
sizes the adapter (envs/smax.py) produces.

Only for validating a configuration fast (`config.check`, run on every Snakemake parse). The real
environment is the truth: tests/test_smax.py builds every map here with jaxmarl and compares.

Maps are jaxmarl 0.2.0's SMAX scenarios (jaxmarl.environments.smax.smax_env.MAP_NAME_TO_SCENARIO)
that the paper's Table 2 uses. MMM2 is not one of them: SMAX has no medivac unit (no healing), so
MMM2 does not exist on SMAX and Table 2's MMM2 row is unavailable there.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata

from ..registry import SuiteDescription, TaskDescription

# jaxmarl's SMAX feature layout: every other unit is seen through 7 features plus a one-hot over
# the 6 unit types, the unit itself through 4 plus the one-hot; the joint state keeps 4 per unit
# (health, x, y, weapon cooldown), see envs/smax.py.
_UNIT_TYPES = 6
_OTHER_FEATURES = 7 + _UNIT_TYPES
_OWN_FEATURES = 4 + _UNIT_TYPES
STATE_FEATURES_PER_UNIT = 4
MOVE_ACTIONS = 5          # four directions and stop; one attack action per enemy follows
EPISODE_LIMIT = 100       # SMAX's max_steps


@dataclass(frozen=True)
class SmaxMap:
    allies: int
    enemies: int

    @property
    def agents(self) -> list[str]:
        return [f"ally_{i}" for i in range(self.allies)]

    @property
    def obs_dim(self) -> int:
        return _OTHER_FEATURES * (self.allies - 1 + self.enemies) + _OWN_FEATURES

    @property
    def n_actions(self) -> int:
        return MOVE_ACTIONS + self.enemies

    @property
    def state_dim(self) -> int:
        return STATE_FEATURES_PER_UNIT * (self.allies + self.enemies)


MAPS: dict[str, SmaxMap] = {
    "2s3z": SmaxMap(allies=5, enemies=5),
    "5m_vs_6m": SmaxMap(allies=5, enemies=6),
    "6h_vs_8z": SmaxMap(allies=6, enemies=8),
}

def table_note() -> str:
    """How tables name this suite: the package version installed, read without importing jaxmarl."""
    return (f"SMAX rows ran on SMAX (jaxmarl {metadata.version('jaxmarl')}), jaxmarl's re-implementation "
            "of the SMAC maps, not SMAC (StarCraft II)")


SUITE = SuiteDescription(tasks={name: TaskDescription(args={}, agents=lambda a, m=m: m.agents)
                                for name, m in MAPS.items()}, table_note=table_note)
