"""SMAX (jaxmarl's JAX re-implementation of the StarCraft Multi-Agent Challenge) as a discrete suite.

One game is K copies of a map, stepped together by one jitted, vmapped function; jaxmarl and jax
are imported with this module only (config validation reads envs/smax_maps.py instead). The team
is every ally; the enemies are jaxmarl's built-in heuristic (`HeuristicEnemySMAX`), so they are not
agents of the game.

- Actions: one integer per ally (0-3 move, 4 stop, 5 + j attack enemy j), with the masks of
  jaxmarl's `get_avail_actions` (a dead ally may only stop); actions outside them are refused.
- Joint state: per unit (allies then enemies) health / max health, position / map size, weapon
  cooldown / the unit's cooldown clipped to [0, 1], zero for dead units: jaxmarl's world state
  without its constant blocks (team ids, unit types and their one-hots) and with bounded scales.
- Rewards: jaxmarl gives every ally one team reward, the enemies' health lost (fractions of max
  health) / n_enemies, plus 1 on a win. We split it exactly: an ally fired in a step when its
  weapon cooldown rose (it can fire at most once per step on these maps, checked on construction),
  at enemy action - 5; each enemy's health drop up to the damage fired at it is shared among the
  allies that fired at it by their damage; what no ally caused (the rest of a drop, e.g. a unit
  pushed into a wall, and the win bonus) is split equally. The split sums to jaxmarl's team reward
  (tests/test_smax.py).
- Episodes end when one side is dead (terminated) or after 100 steps (truncated);
  `episode_info()["won"]` says whether the allies won the battle.
- Resets: `reset_one(k, seed)` returns the new episode's observation at once and marks env k; the
  next `step` starts env k from that reset state inside the jitted graph. Same seed, same actions:
  same episode (the env's randomness is drawn from a key made from the seed).
- JAX's persistent compilation cache (process-wide) goes to $MACCABENCH_JAX_CACHE, else a folder
  under the system's temp dir (see `enable_compilation_cache`).
"""
from __future__ import annotations

import io
import os
import sys
import tempfile

import numpy as np

from ..errors import MaccabenchError
from . import smax_maps
from .base import WinLossGameBase

CACHE_ENV = "MACCABENCH_JAX_CACHE"


def enable_compilation_cache(path: str | os.PathLike | None = None) -> str:
    """Point JAX's persistent compilation cache at `path`, else $MACCABENCH_JAX_CACHE, else
    <tmp>/maccabench-jax-cache (the pipeline sets the variable to a folder under its results
    directory). Compiling one SMAX step takes 7-25 s; a cached one 1-2 s. The cache is
    process-wide: where one is set already (by an earlier call or the caller's own
    jax.config), it stays. Returns the folder in use."""
    import jax
    if jax.config.jax_compilation_cache_dir:
        return jax.config.jax_compilation_cache_dir
    path = str(path or os.environ.get(CACHE_ENV) or os.path.join(tempfile.gettempdir(), "maccabench-jax-cache"))
    os.makedirs(path, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return path


def _import_jaxmarl():
    # `import jaxmarl` prints about optional submodules to stdout, which our output must not carry,
    # and one of its modules (mabrax) resets sys.stdout/stderr to sys.__stdout__/__stderr__ on the
    # way: point those at a sink too while importing, then put all four back.
    saved = sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__
    sink = io.StringIO()
    sys.stdout = sys.__stdout__ = sink
    try:
        import jaxmarl
        from jaxmarl.environments.smax import HeuristicEnemySMAX, map_name_to_scenario
    finally:
        sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__ = saved
    return jaxmarl, HeuristicEnemySMAX, map_name_to_scenario


def jaxmarl_version() -> str:
    return _import_jaxmarl()[0].__version__


class SmaxGame(WinLossGameBase):
    label = "SMAX"

    def __init__(self, task: str, task_args: dict, num_envs: int):
        if task not in smax_maps.MAPS:
            raise MaccabenchError(f"SMAX has no map {task!r} here. Fix: use one of {', '.join(sorted(smax_maps.MAPS))}"
                                  " (MMM2 does not exist on SMAX: it has no medivac)")
        if task_args:
            raise MaccabenchError(f"SMAX map {task} takes no task_args, got {sorted(task_args)}")
        import jax
        import jax.numpy as jnp
        enable_compilation_cache()
        _, HeuristicEnemySMAX, map_name_to_scenario = _import_jaxmarl()
        self.task, self.num_envs = task, num_envs
        self.env = env = HeuristicEnemySMAX(scenario=map_name_to_scenario(task))
        inner = env._env   # the SMAX game itself (its unit tables and world-step constants)
        self.agents = list(env.agents)
        na, ne = env.num_allies, env.num_enemies
        self.obs_dims = [int(env.observation_space(a).shape[0]) for a in self.agents]
        self.action_dims = [int(env.action_space(a).n) for a in self.agents]
        self.state_dim = smax_maps.STATE_FEATURES_PER_UNIT * (na + ne)
        self.episode_limit = int(inner.max_steps)
        if inner.num_movement_actions != smax_maps.MOVE_ACTIONS:
            raise MaccabenchError(f"jaxmarl's SMAX has {inner.num_movement_actions} movement actions, "
                                  f"the adapter expects {smax_maps.MOVE_ACTIONS}. Fix: install the pinned jaxmarl")
        # The reward split reads "fired" from the cooldown's rise over a step: exact while no ally can
        # fire twice within one step's world steps (its shortest cooldown outlasts them).
        dt, W = float(inner.time_per_step), int(inner.world_steps_per_env_step)
        ally_types = np.asarray(inner.scenario)[:na]
        shortest = float(np.min(np.asarray(inner.unit_type_weapon_cooldowns)[ally_types])) - dt
        if shortest <= (W - 1) * dt:
            raise MaccabenchError(f"SMAX map {task}: an ally can fire twice per step, which the exact reward "
                                  "split does not handle. Fix: use another map")
        unit_health = inner.unit_type_health
        map_size = jnp.array([inner.map_width, inner.map_height], jnp.float32)

        def joint_state(s):
            types = s.unit_types
            feats = jnp.concatenate([
                (s.unit_health / unit_health[types])[:, None],
                s.unit_positions / map_size,
                jnp.clip(s.unit_weapon_cooldowns / inner.unit_type_weapon_cooldowns[types], 0.0, 1.0)[:, None],
            ], axis=-1)
            return (feats * s.unit_alive[:, None]).reshape(-1)

        def view(st):
            obs = env.get_obs(st)
            avail = env.get_avail_actions(st)
            return (jnp.stack([obs[a] for a in self.agents]), joint_state(st.state),
                    jnp.stack([avail[a] for a in self.agents]).astype(bool))

        def reset(key):
            reset_key, step_key = jax.random.split(key)
            # typed as after a step (the heuristic's initial state holds a weakly typed -1), so the
            # jitted step is compiled once, not again on the first step after a reset
            state = jax.tree.map(lambda x: jnp.asarray(x, x.dtype), env.reset(reset_key)[1])
            return state, step_key

        def split_reward(s0, s1, actions):
            """Per-ally rewards [na] from the states before and after one step (module docstring)."""
            enemy_max = unit_health[s0.unit_types[na:]]
            hp_drop = s0.unit_health[na:] - s1.unit_health[na:]
            fired = s1.unit_weapon_cooldowns[:na] > s0.unit_weapon_cooldowns[:na] - W * dt + 1e-3
            fired = fired & (actions >= smax_maps.MOVE_ACTIONS)
            damage = inner.unit_type_attacks[s0.unit_types[:na]] * fired
            dealt = damage[:, None] * jax.nn.one_hot(actions - smax_maps.MOVE_ACTIONS, ne)   # [na, ne]
            total = dealt.sum(0)
            caused = jnp.minimum(total, hp_drop)
            shares = dealt / jnp.where(total > 0, total, 1.0) * (caused / enemy_max / ne)
            won = ~s1.unit_alive[na:].any() & s1.unit_alive[:na].any()
            uncaused = ((hp_drop - caused) / enemy_max).sum() / ne + jnp.where(won, inner.won_battle_bonus, 0.0)
            return shares.sum(1) + uncaused / na, won

        def step(st, key, actions, over):
            key, step_key = jax.random.split(key)
            _, st1, team, _, _ = env.step_env(step_key, st, {a: actions[i] for i, a in enumerate(self.agents)})
            rewards, won = split_reward(st.state, st1.state, actions)
            s = st1.state
            decided = ~s.unit_alive[:na].any() | ~s.unit_alive[na:].any()
            # an env whose episode is over (and not reset) stays as it is: terminated, no reward
            st1 = jax.tree.map(lambda a, b: jnp.where(over, a, b), st, st1)
            return (st1, key, jnp.where(over, 0.0, rewards), jnp.where(over, 0.0, team[self.agents[0]]),
                    decided | over, s.done & ~decided & ~over, won & ~over)

        def batched_step(states, keys, over, actions, pending, reset_keys):
            fresh, fresh_keys = jax.vmap(reset)(reset_keys)
            pick = lambda a, b: jnp.where(pending.reshape(pending.shape + (1,) * (a.ndim - 1)), a, b)
            states = jax.tree.map(pick, fresh, states)
            keys, over = pick(fresh_keys, keys), over & ~pending
            states, keys, rewards, team, term, trunc, won = jax.vmap(step)(states, keys, actions, over)
            return (states, keys, term | trunc) + jax.vmap(view)(states) + (rewards, team, term, trunc, won)

        def batched_reset(keys):
            states, step_keys = jax.vmap(reset)(keys)
            return (states, step_keys) + jax.vmap(view)(states)

        self._batched_step = jax.jit(batched_step)
        self._batched_reset = jax.jit(batched_reset)
        self._reset_one = jax.jit(lambda key: view(reset(key)[0]))
        self._seed_key = jax.jit(jax.vmap(jax.random.PRNGKey))
        self._states = None

    # ---- Game ------------------------------------------------------------------------------------
    def reset(self, seeds) -> np.ndarray:
        assert len(seeds) == self.num_envs
        keys = self._seed_key(np.asarray(seeds, np.uint32))
        self._states, self._keys, *views = self._batched_reset(keys)
        self._over = np.zeros(self.num_envs, bool)
        self._pending = np.zeros(self.num_envs, bool)
        self._pending_keys = np.array(keys)
        self._obs, self._state, self._avail = (np.array(v) for v in views)
        self._won = np.zeros(self.num_envs, bool)
        self.last_team_reward = np.zeros(self.num_envs, np.float32)
        return self._obs.copy()

    def reset_one(self, k: int, seed: int) -> np.ndarray:
        key = self._seed_key(np.asarray([seed], np.uint32))
        obs, state, avail = (np.asarray(v) for v in self._reset_one(key[0]))
        self._pending[k], self._pending_keys[k] = True, np.asarray(key[0])
        self._obs[k], self._state[k], self._avail[k] = obs, state, avail
        return obs.copy()

    def step(self, actions: np.ndarray):
        actions = self._check_actions(actions, live=~self._over | self._pending)
        # copies: on CPU jax may read a numpy argument in place, after this call has returned (async
        # dispatch), so the reset flags cleared below and reset_one's writes must not touch its inputs
        (self._states, self._keys, over, obs, state, avail, rewards, team, term, trunc, won) = self._batched_step(
            self._states, self._keys, self._over.copy(), actions.astype(np.int32), self._pending.copy(),
            self._pending_keys.copy())
        self._pending[:] = False
        self._over = np.array(over)
        self._obs, self._state, self._avail = np.array(obs), np.array(state), np.array(avail)
        self._won = np.array(won)
        self.last_team_reward = np.asarray(team, np.float32)   # jaxmarl's own, for checking the split
        return self._obs.copy(), np.asarray(rewards, np.float32), np.array(term), np.array(trunc)

