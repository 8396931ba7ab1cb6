"""The MPE tasks as OMAR (Pan et al., ICML 2022; MACCA's Table 1 used its datasets) defined them,
and a credit-assignment variant of CN, on mpe2's world, entities and environment loop.

Scenario code of our own, written from a reading of OMAR's particle-env scenarios (rewards,
observations, counts, sizes, speeds, reset ranges). docs/mpe_tasks.md lists every difference from
OMAR's environment. Two deliberate departures from plain mpe2:

- `OmarWorld` integrates as the particle env OMAR ran does (velocity first, then position with
  the new velocity); mpe2 moves position with the previous velocity, so there an action reaches
  position, and hence reward, one step late.
- Agents OMAR gives an `accel` feel it twice there (its env scales the action by accel and its
  world again by mass * accel); `omar_forces` (default on) reproduces that force in mpe2, which
  scales once.

Actions are 2-D forces in [-1, 1] (OMAR's interface); `force_to_mpe2` maps them exactly onto
mpe2's 5-D continuous action. Every episode lasts `max_cycles` steps (25), never terminates.

Tasks: `omar_simple_spread` (CN), `omar_simple_tag` (PP), `omar_simple_world` (WORLD) and
`simple_spread_assigned` (agent i rewarded for its own landmark i only; `assigned_ground_truth`
gives its causal masks).
"""
from __future__ import annotations

import math

import numpy as np
from mpe2._mpe_utils.core import Agent, Landmark, World
from mpe2._mpe_utils.scenario import BaseScenario
from mpe2._mpe_utils.simple_env import SimpleEnv

from ..errors import ConfigError
from .mpe_tasks import OWN_TASKS

FORCE_DIMS = 2       # the policies' action: a 2-D force in [-1, 1]
LANDMARK_CAP = 10.0  # CN's per-landmark reward min(1 / d, 10)


def force_to_mpe2(actions: np.ndarray) -> np.ndarray:
    """[..., 2] forces in [-1, 1] -> mpe2's continuous action [..., 5] in [0, 1].

    mpe2 reads u = (a[2] - a[1], a[4] - a[3]) * sensitivity, so [0, relu(-x), relu(x), relu(-y),
    relu(y)] gives u = (x, y) * sensitivity, as OMAR's env does with the 2-D action itself.
    Forces are clipped to [-1, 1] (OMAR's action box; mpe2's ClipOutOfBoundsWrapper does the same)."""
    f = np.clip(actions[..., :FORCE_DIMS], -1.0, 1.0)
    out = np.zeros((*f.shape[:-1], 5), np.float32)
    out[..., 1], out[..., 2] = np.maximum(-f[..., 0], 0), np.maximum(f[..., 0], 0)
    out[..., 3], out[..., 4] = np.maximum(-f[..., 1], 0), np.maximum(f[..., 1], 0)
    return out


class OmarWorld(World):
    """mpe2's world with the original particle env's integration order (the one OMAR ran)."""

    def integrate_state(self, p_force) -> None:
        for i, entity in enumerate(self.entities):
            if not entity.movable:
                continue
            vel = entity.state.p_vel * (1 - self.damping)
            if p_force[i] is not None:
                vel = vel + (p_force[i] / entity.mass) * self.dt
            speed = math.hypot(vel[0], vel[1])
            if entity.max_speed is not None and speed > entity.max_speed:
                vel = vel / speed * entity.max_speed
            entity.state.p_vel = vel
            entity.state.p_pos = entity.state.p_pos + vel * self.dt


def _dist(a, b) -> float:
    d = a.state.p_pos - b.state.p_pos
    return math.hypot(d[0], d[1])  # 2-D world; several times faster than numpy's reductions here


def _touching(a, b) -> bool:
    return _dist(a, b) < a.size + b.size


def _capped_inverse(d: float) -> float:
    return LANDMARK_CAP if d * LANDMARK_CAP <= 1.0 else 1.0 / d


def _place(entities, np_random, low: float, high: float, dim_p: int) -> None:
    for e in entities:
        e.state.p_pos = np_random.uniform(low, high, dim_p)
        e.state.p_vel = np.zeros(dim_p)


def _agent(name: str, size: float, collide: bool = True) -> Agent:
    a = Agent()
    a.name, a.size, a.collide, a.silent = name, size, collide, True
    return a


def _landmark(name: str, size: float, collide: bool) -> Landmark:
    lm = Landmark()
    lm.name, lm.size, lm.collide, lm.movable = name, size, collide, False
    return lm


# ---- CN ---------------------------------------------------------------------------------------

class OmarSpread(BaseScenario):
    """CN: N agents (size 0.15), N landmarks. Each agent's reward is the shared sum over landmarks
    of min(1 / d_min, 10) (d_min: the nearest agent's distance) minus 5 per other agent it touches.
    Observation [vel, pos, landmarks - pos, others - pos, others' comm (zeros: silent)]: 6N dims."""

    collision_penalty = 5.0
    agents_collide = True

    def make_world(self, N: int) -> OmarWorld:
        world = OmarWorld()
        world.dim_c = 2
        world.agents = [_agent(f"agent_{i}", 0.15, collide=self.agents_collide) for i in range(N)]
        world.landmarks = [_landmark(f"landmark {i}", 0.05, collide=False) for i in range(N)]
        for a in world.agents:
            a.color = np.array([0.35, 0.35, 0.85])
        for lm in world.landmarks:
            lm.color = np.array([0.25, 0.25, 0.25])
        return world

    def reset_world(self, world: World, np_random) -> None:
        bound = 1.0 if len(world.agents) <= 3 else 2.0  # OMAR widens the arena beyond 3 agents
        _place(world.agents, np_random, -bound, bound, world.dim_p)
        for a in world.agents:
            a.state.c = np.zeros(world.dim_c)
        _place(world.landmarks, np_random, -bound, bound, world.dim_p)

    def _collisions(self, agent, world) -> int:
        return sum(1 for o in world.agents if o is not agent and _touching(o, agent))

    def reward(self, agent, world) -> float:
        cover = sum(_capped_inverse(min(_dist(a, lm) for a in world.agents)) for lm in world.landmarks)
        return cover - self.collision_penalty * self._collisions(agent, world)

    def observation(self, agent, world) -> np.ndarray:
        pos = agent.state.p_pos
        others = [o for o in world.agents if o is not agent]
        return np.concatenate([agent.state.p_vel, pos] + [lm.state.p_pos - pos for lm in world.landmarks]
                              + [o.state.p_pos - pos for o in others] + [o.state.c for o in others])


class AssignedSpread(OmarSpread):
    """The credit task: CN's world and observations, but agent i is rewarded only for its own
    landmark i, min(1 / d(agent i, landmark i), 10), in CN's reward units (so OMAR's CN
    hyper-parameters, which are in reward units, carry over). Agents pass through each other and
    are never penalised: a collision would make agent i's reward depend on the others' positions
    and actions, and the causal structure (`assigned_ground_truth`) would no longer be sparse."""

    agents_collide = False

    def reward(self, agent, world) -> float:
        i = world.agents.index(agent)
        return _capped_inverse(_dist(agent, world.landmarks[i]))


def cn_obs_layout(n_agents: int) -> dict[str, slice]:
    """Where each part of a CN agent's observation lies (OmarSpread.observation)."""
    lm, oth = 4, 4 + 2 * n_agents
    return {"vel": slice(0, 2), "pos": slice(2, 4), "landmarks": slice(lm, oth),
            "others": slice(oth, oth + 2 * (n_agents - 1)), "comm": slice(oth + 2 * (n_agents - 1), 6 * n_agents)}


def assigned_ground_truth(task_args: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The credit task's causal masks: (state [N, N * 6N], action [N, N * 2]) booleans over the
    joint state (the team's observations concatenated in agent order) and the joint action.

    Agent i's reward after a step is a function of agent i's velocity, landmark i's position
    relative to agent i and agent i's force, and of nothing else: entries `vel` and `landmarks[i]`
    of observation i, and action i. Agent i's absolute position is not a cause (translating
    agent i and landmark i together leaves the reward unchanged). The joint state is redundant
    (other observations also carry landmark i and agent i), so this is the minimal mask inside
    agent i's own observation, not the only mask from which the reward can be computed."""
    n = int(_args("simple_spread_assigned", task_args or {})["N"])
    obs_dim, lay = 6 * n, cn_obs_layout(n)
    state = np.zeros((n, n * obs_dim), bool)
    action = np.zeros((n, n * FORCE_DIMS), bool)
    for i in range(n):
        base = i * obs_dim
        state[i, base + lay["vel"].start: base + lay["vel"].stop] = True
        lm = base + lay["landmarks"].start + 2 * i
        state[i, lm: lm + 2] = True
        action[i, FORCE_DIMS * i: FORCE_DIMS * (i + 1)] = True
    return state, action


# ---- PP and WORLD -----------------------------------------------------------------------------

class OmarChase(BaseScenario):
    """PP (`food = forests = 0`) and WORLD: adversaries (size 0.075, accel 3, max speed 1.0) chase
    good agents (accel 4, max speed 1.3) among obstacles (size 0.2).

    Adversary reward, identical for all: -0.1 * sum over adversaries of the distance to the
    nearest good agent, plus `catch_bonus` per (good agent, adversary) pair touching. Good agent:
    +0.1 * sum of distances to adversaries, -`catch_bonus` per adversary touching it,
    -`bound_weight` * bound(|x|) per coordinate; WORLD also +2 per food touched and
    +0.05 * distance to the nearest food (OMAR's sign, kept; mpe2's simple_world_comm has -0.05).
    Observation [vel, pos, landmarks - pos (obstacles, food, forests), others - pos, other good
    agents' vel] and in WORLD one in-forest flag (+1 / -1) per forest. OMAR makes every WORLD
    agent a `leader`, which sees through forests, so forests hide nothing."""

    def __init__(self, num_good: int, num_adversaries: int, num_obstacles: int, num_food: int,
                 num_forests: int, omar_forces: bool):
        self.counts = (num_good, num_adversaries, num_obstacles, num_food, num_forests)
        self.omar_forces = omar_forces
        is_world = bool(num_food or num_forests)
        self.catch_bonus = 5.0 if is_world else 10.0
        self.bound_weight = 2.0 if is_world else 1.0
        self.good_size = 0.045 if is_world else 0.05

    def make_world(self) -> OmarWorld:
        num_good, num_adv, num_obstacles, num_food, num_forests = self.counts
        world = OmarWorld()
        world.dim_c = 2
        world.agents = []
        for i in range(num_adv + num_good):
            adversary = i < num_adv
            a = _agent(f"adversary_{i}" if adversary else f"agent_{i - num_adv}", 0.075 if adversary else self.good_size)
            a.adversary = adversary
            accel = 3.0 if adversary else 4.0
            a.accel = accel * accel if self.omar_forces else accel
            a.max_speed = 1.0 if adversary else 1.3
            a.color = np.array([0.85, 0.35, 0.35]) if adversary else np.array([0.35, 0.85, 0.35])
            world.agents.append(a)
        world.obstacles = [_landmark(f"landmark {i}", 0.2, collide=True) for i in range(num_obstacles)]
        world.food = [_landmark(f"food {i}", 0.03, collide=False) for i in range(num_food)]
        world.forests = [_landmark(f"forest {i}", 0.3, collide=False) for i in range(num_forests)]
        world.landmarks = world.obstacles + world.food + world.forests
        for group, color in [(world.obstacles, [0.25] * 3), (world.food, [0.15, 0.15, 0.65]), (world.forests, [0.6, 0.9, 0.6])]:
            for lm in group:
                lm.color = np.array(color)
        return world

    def reset_world(self, world: World, np_random) -> None:
        _place(world.agents, np_random, -1.0, 1.0, world.dim_p)
        for a in world.agents:
            a.state.c = np.zeros(world.dim_c)
        _place(world.landmarks, np_random, -0.9, 0.9, world.dim_p)

    def reward(self, agent, world) -> float:
        adversaries = [a for a in world.agents if a.adversary]
        good = [a for a in world.agents if not a.adversary]
        if agent.adversary:  # the same for every adversary: shaped distance plus the catches
            rew = 0.0
            for adv in adversaries:
                d = [_dist(g, adv) for g in good]
                rew += -0.1 * min(d) + self.catch_bonus * sum(dg < g.size + adv.size for dg, g in zip(d, good))
            return rew
        rew = 0.1 * sum(_dist(agent, adv) for adv in adversaries)
        rew -= self.catch_bonus * sum(_touching(adv, agent) for adv in adversaries)
        rew -= self.bound_weight * sum(_bound(abs(x)) for x in agent.state.p_pos)
        if world.food:
            rew += 2.0 * sum(_touching(agent, f) for f in world.food)
            rew += 0.05 * min(_dist(f, agent) for f in world.food)
        return rew

    def observation(self, agent, world) -> np.ndarray:
        pos = agent.state.p_pos
        others = [o for o in world.agents if o is not agent]
        parts = ([agent.state.p_vel, pos] + [lm.state.p_pos - pos for lm in world.landmarks]
                 + [o.state.p_pos - pos for o in others] + [o.state.p_vel for o in others if not o.adversary])
        parts += [np.array([1.0 if _touching(agent, f) else -1.0]) for f in world.forests]
        return np.concatenate(parts)


def _bound(x: float) -> float:
    """The good agents' penalty for leaving the arena, per coordinate (the particle env's)."""
    if x < 0.9:
        return 0.0
    if x < 1.0:
        return (x - 0.9) * 10
    return min(np.exp(2 * x - 2), 10)


# ---- the tasks --------------------------------------------------------------------------------

TASKS = OWN_TASKS   # task -> its task_args and their defaults (OMAR's values), described in mpe_tasks
# tasks whose causal structure is known: task -> f(task_args) -> (state, action) masks (envs.base.Game.causal_masks)
CAUSAL_MASKS = {"simple_spread_assigned": assigned_ground_truth}


def _args(task: str, task_args: dict) -> dict:
    unknown = sorted(set(task_args) - set(TASKS[task]))
    if unknown:
        raise ConfigError(f"task_args.{unknown[0]}", f"task {task} has no argument {unknown[0]!r}",
                          f"use only {', '.join(TASKS[task])}")
    return {**TASKS[task], **task_args}


class OmarEnv(SimpleEnv):
    """mpe2's AEC environment around one of our scenarios (5-D continuous actions, see
    `force_to_mpe2`)."""

    def __init__(self, task: str, task_args: dict):
        args = _args(task, task_args)
        if task in ("omar_simple_spread", "simple_spread_assigned"):
            scenario = OmarSpread() if task == "omar_simple_spread" else AssignedSpread()
            world = scenario.make_world(int(args["N"]))
        else:
            scenario = OmarChase(args["num_good"], args["num_adversaries"], args["num_obstacles"],
                                 args.get("num_food", 0), args.get("num_forests", 0), bool(args["omar_forces"]))
            world = scenario.make_world()
        super().__init__(scenario=scenario, world=world, max_cycles=int(args["max_cycles"]), continuous_actions=True)
        self.metadata = {**self.metadata, "name": task}
