"""Push-T: push a T-shaped block onto a fixed goal pose with a circular pusher.

Introduced in chapter 5.

This is the Push-T benchmark of Diffusion Policy (Chi et al., RSS 2023), written against
gymnasium and pymunk 7. The numbers are the benchmark's:

- a 512 × 512 workspace closed by four static walls, segments (5,506)-(5,5), (5,5)-(506,5),
  (506,5)-(506,506), (5,506)-(506,506) of radius 2; gravity (0, 0); ``space.damping = 0``, so a
  body keeps no velocity of its own from one physics step to the next (pushing is quasi-static);
  friction and elasticity are pymunk's default 0;
- physics at 100 Hz, control at 10 Hz: one :meth:`PushTEnv.step` is 10 physics steps of
  ``dt = 0.01``;
- the agent is a kinematic disc of radius 15; an action is a target position ``a`` in
  [0, 512]², tracked by the PD law, each physics step,
  ``v ← v + (k_p (a − p) + k_v (0 − v)) dt`` with ``k_p = 100``, ``k_v = 20``;
- the block is one body of mass 1 made of two boxes (see :mod:`dplearn.envs.geometry`) with
  moment of inertia ``2 × moment_for_poly(1, bar)`` = 3000 and centre of gravity (0, 45);
- coverage = area(block ∩ goal) / area(goal) for the goal pose (256, 256, π/4);
  reward = clip(coverage / 0.95, 0, 1); success, and termination, when coverage > 0.95;
  the registered env ``dplearn/PushT-v0`` truncates after 300 steps;
- reset: agent position uniform over the integers in [50, 450)², block position uniform over the
  integers in [100, 400)², block angle uniform in [−π, π); setting a state sets the block's angle
  before its position, so the observed state is the one asked for, then runs one physics step
  to settle contacts (as the reference implementation does).

Observations (``obs_type``):

- ``"state"``: (agent x, agent y, block x, block y, block angle mod 2π), float64, shape (5,);
- ``"keypoints"``: the 8 corners of the block's two boxes (:func:`~dplearn.envs.geometry.t_keypoints`:
  bar corners, then stem corners) followed by the agent position, flattened to shape (18,);
- ``"pixels"``: a top-down 96 × 96 × 3 uint8 image (:func:`~dplearn.envs.render.render_state`);
- ``"pixels_agent_pos"``: ``{"pixels": image, "agent_pos": (x, y)}``.

Planners can save and restore the complete physics state, contact solver included, with
:meth:`PushTEnv.get_physics_state` / :meth:`PushTEnv.set_physics_state`: a rollout from a restored
state is bit-for-bit the rollout the environment would have produced. This needs a broad phase
without hidden history (a spatial hash); ``broadphase="tree"`` uses Chipmunk's default tree instead,
as the reference does, and then reproduces Hugging Face's gym-pusht trajectories bit for bit (the
two differ only where shapes overlap deeply, where the tree warm-starts its contact search from
the previous step).
"""

from __future__ import annotations

import ctypes
import math
from typing import Any

import gymnasium as gym
import numpy as np
import pymunk
from gymnasium import spaces
from pymunk._chipmunk import ffi, lib

from dplearn.envs.geometry import (
    GOAL_POSE,
    T_CENTER_OF_GRAVITY,
    T_RADIUS,
    T_VERTICES,
    coverage,
    t_keypoints,
)

__all__ = [
    "PushTEnv",
    "OBS_TYPES",
    "WORKSPACE_SIZE",
    "WALLS",
    "WALL_RADIUS",
    "AGENT_RADIUS",
    "BLOCK_MASS",
    "BLOCK_MOMENT",
    "SIM_HZ",
    "CONTROL_HZ",
    "DT",
    "K_P",
    "K_V",
    "SUCCESS_THRESHOLD",
    "PHYSICS_STATE_SIZE",
]

OBS_TYPES = ("state", "keypoints", "pixels", "pixels_agent_pos")

WORKSPACE_SIZE = 512.0
WALLS: tuple[tuple[tuple[float, float], tuple[float, float]], ...] = (
    ((5.0, 506.0), (5.0, 5.0)),
    ((5.0, 5.0), (506.0, 5.0)),
    ((506.0, 5.0), (506.0, 506.0)),
    ((5.0, 506.0), (506.0, 506.0)),
)
WALL_RADIUS = 2.0
AGENT_RADIUS = 15.0
BLOCK_MASS = 1.0
#: 2 × pymunk.moment_for_poly(1, bar): the reference counts the bar's moment (about the body
#: origin) twice; kept for compatibility.
BLOCK_MOMENT = 2.0 * pymunk.moment_for_poly(BLOCK_MASS, [tuple(v) for v in T_VERTICES[0]])
SIM_HZ = 100
CONTROL_HZ = 10
DT = 1.0 / SIM_HZ
SUBSTEPS = SIM_HZ // CONTROL_HZ
K_P = 100.0
K_V = 20.0
SUCCESS_THRESHOLD = 0.95

# ---------------------------------------------------------------------------------------------
# Exact physics state
#
# Chipmunk carries state from one physics step to the next beyond positions and velocities:
# each body's "bias velocity" (the penetration correction of the last solve, applied at the next
# position update) and the cached contact impulses that warm-start the solver. Both are saved and
# restored so that a restored rollout is bit-identical. Bias velocities are not exposed by pymunk;
# they are read from the C body struct, whose layout is checked against the public API first.
# ---------------------------------------------------------------------------------------------

# Offsets (in doubles) of fields in Chipmunk's struct cpBody.
_M, _M_INV, _COG, _P, _V, _A, _W, _V_BIAS, _W_BIAS = 2, 3, 6, 8, 10, 14, 15, 24, 26
_BODY_DOUBLES = 27
_BODY_LAYOUT_OK: bool | None = None


def _body_fields(body: pymunk.Body):
    address = int(ffi.cast("uintptr_t", body._body))
    return (ctypes.c_double * _BODY_DOUBLES).from_address(address)


def _check_body_layout() -> bool:
    """Is Chipmunk's body struct laid out as expected? Compared with values set through pymunk."""
    global _BODY_LAYOUT_OK
    if _BODY_LAYOUT_OK is None:
        body = pymunk.Body(2.0, 7.0)
        body.center_of_gravity = (3.0, 5.0)
        body.angle = 0.25
        body.position = (11.0, 13.0)
        body.velocity = (17.0, 19.0)
        body.angular_velocity = 23.0
        f = _body_fields(body)
        cx, cy = (
            3.0 * math.cos(0.25) - 5.0 * math.sin(0.25),
            3.0 * math.sin(0.25) + 5.0 * math.cos(0.25),
        )
        _BODY_LAYOUT_OK = (
            f[_M] == 2.0
            and f[_M_INV] == 0.5
            and (f[_COG], f[_COG + 1]) == (3.0, 5.0)
            and abs(f[_P] - (11.0 + cx)) < 1e-12
            and abs(f[_P + 1] - (13.0 + cy)) < 1e-12
            and (f[_V], f[_V + 1]) == (17.0, 19.0)
            and f[_A] == 0.25
            and f[_W] == 23.0
            and (f[_V_BIAS], f[_V_BIAS + 1], f[_W_BIAS]) == (0.0, 0.0, 0.0)
        )
    return _BODY_LAYOUT_OK


# Layout of the physics-state vector.
_S_AGENT_POS = slice(0, 2)
_S_AGENT_VEL = slice(2, 4)
_S_BLOCK_POS = slice(4, 6)
_S_BLOCK_ANGLE = 6
_S_BLOCK_VEL = slice(7, 9)
_S_BLOCK_ANGVEL = 9
_S_BLOCK_COG = slice(10, 12)
_S_BLOCK_VBIAS = slice(12, 14)
_S_BLOCK_WBIAS = 14
_S_CONTACTS = 15
# Contact cache: one slot per pair of shapes that can touch (agent–bar, agent–stem, each box with
# each wall); per slot [present, ticks since last touched, number of contacts, then per contact
# (hash high 32 bits, hash low 32 bits, normal impulse, tangent impulse)].
_MAX_CONTACTS = 2
_SLOT_SIZE = 3 + 4 * _MAX_CONTACTS
# Shape indices: walls 0..3, agent 4, bar 5, stem 6.
_PAIRS = [(4, 5), (4, 6)] + [(w, b) for b in (5, 6) for w in range(4)]
_PAIR_SLOT = {pair: k for k, pair in enumerate(_PAIRS)}
PHYSICS_STATE_SIZE = _S_CONTACTS + _SLOT_SIZE * len(_PAIRS)

_STATE_FIRST = lib.CP_ARBITER_STATE_FIRST_COLLISION
_STATE_NORMAL = lib.CP_ARBITER_STATE_NORMAL
_STATE_CACHED = lib.CP_ARBITER_STATE_CACHED


def _ptr(cdata) -> int:
    return int(ffi.cast("uintptr_t", cdata))


class PushTEnv(gym.Env):
    """The Push-T environment (gymnasium API). Introduced in chapter 5.

    Args:
        obs_type: ``"state"`` (5,), ``"keypoints"`` (18,), ``"pixels"`` (96, 96, 3) uint8 or
            ``"pixels_agent_pos"`` (dict); see the module docstring.
        render_mode: ``None`` or ``"rgb_array"``; :meth:`render` then returns a
            ``(render_size, render_size, 3)`` uint8 image with the last action marked by a cross.
        render_size: side of the image returned by :meth:`render`, in pixels.
        obs_size: side of the image observation, in pixels (96 in the benchmark).
        broadphase: how Chipmunk finds candidate contacts. ``"hash"`` (default): a spatial hash,
            whose results depend on the current positions only, so that
            :meth:`set_physics_state` restores a state exactly. ``"tree"``: Chipmunk's default
            bounding-box tree, as in the reference implementation; trajectories then match
            Hugging Face's gym-pusht bit for bit, but the tree keeps hidden history (it
            warm-starts each contact search from the previous step's closest features), so a
            restored state may replay differently once shapes overlap deeply. Both use the same
            bodies, shapes and solver; they differ only in how deep overlaps are resolved.

    ``step(action)`` takes a target position ``(x, y)``, shape (2,), and returns
    ``(obs, reward, terminated, truncated, info)`` with ``info`` keys ``coverage``,
    ``is_success``, ``block_pose`` (x, y, θ), ``goal_pose`` and ``n_contacts`` (contact points per
    physics step, rounded up). ``reset(options={"reset_to_state": [ax, ay, bx, by, θ]})`` starts
    from a given state.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": CONTROL_HZ}

    def __init__(
        self,
        obs_type: str = "state",
        render_mode: str | None = None,
        render_size: int = 96,
        obs_size: int = 96,
        broadphase: str = "hash",
    ):
        super().__init__()
        if broadphase not in ("hash", "tree"):
            raise ValueError(f"broadphase must be 'hash' or 'tree', got {broadphase!r}")
        self.broadphase = broadphase
        if obs_type not in OBS_TYPES:
            raise ValueError(f"obs_type must be one of {list(OBS_TYPES)}, got {obs_type!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}"
            )
        for name, value in (("render_size", render_size), ("obs_size", obs_size)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 8:
                raise ValueError(f"{name} must be an integer of at least 8 pixels, got {value!r}")
        self.obs_type = obs_type
        self.render_mode = render_mode
        self.render_size = int(render_size)
        self.obs_size = int(obs_size)
        self.goal_pose = np.array(GOAL_POSE, dtype=np.float64)
        self._goal = tuple(float(v) for v in GOAL_POSE)
        self.success_threshold = SUCCESS_THRESHOLD

        ws = WORKSPACE_SIZE
        self.action_space = spaces.Box(low=0.0, high=ws, shape=(2,), dtype=np.float64)
        agent_box = spaces.Box(low=0.0, high=ws, shape=(2,), dtype=np.float64)
        image_box = spaces.Box(low=0, high=255, shape=(obs_size, obs_size, 3), dtype=np.uint8)
        if obs_type == "state":
            self.observation_space = spaces.Box(
                low=np.zeros(5), high=np.array([ws, ws, ws, ws, 2 * np.pi]), dtype=np.float64
            )
        elif obs_type == "keypoints":
            low = np.r_[np.full(16, -T_RADIUS), np.zeros(2)]
            high = np.r_[np.full(16, ws + T_RADIUS), np.full(2, ws)]
            self.observation_space = spaces.Box(low=low, high=high, dtype=np.float64)
        elif obs_type == "pixels":
            self.observation_space = image_box
        else:
            self.observation_space = spaces.Dict({"pixels": image_box, "agent_pos": agent_box})

        self._space: pymunk.Space | None = None
        self._n_contact_points = 0
        self._last_action: np.ndarray | None = None
        self._fix_slots: frozenset[int] = frozenset()
        self._contact_buffers: dict[int, Any] = {}

    # ----------------------------------------------------------------------------- the world --
    @property
    def space(self) -> pymunk.Space:
        """The pymunk space (after :meth:`reset`): for inspection, e.g. in chapter 5."""
        if self._space is None:
            raise RuntimeError("call reset() first: the space is built at reset")
        return self._space

    @property
    def agent_body(self) -> pymunk.Body:
        """The agent's kinematic body (after :meth:`reset`)."""
        if self._space is None:
            raise RuntimeError("call reset() first: the bodies are built at reset")
        return self._agent

    @property
    def block_body(self) -> pymunk.Body:
        """The T block's body (after :meth:`reset`)."""
        if self._space is None:
            raise RuntimeError("call reset() first: the bodies are built at reset")
        return self._block

    def _build_space(self) -> None:
        """A fresh pymunk space: walls, the agent disc and the T block, in the reference's order."""
        space = pymunk.Space()
        space.gravity = (0.0, 0.0)
        space.damping = 0.0
        if self.broadphase == "hash":
            # A spatial hash makes the contacts found, and the order in which the solver visits
            # them, a function of the current positions only, never of the index's history
            # (Chipmunk's tree caches each pair's last closest features to start the next
            # search): needed for exact save/restore.
            space.use_spatial_hash(64.0, 1000)
        walls = [pymunk.Segment(space.static_body, a, b, WALL_RADIUS) for a, b in WALLS]
        space.add(*walls)

        agent = pymunk.Body(body_type=pymunk.Body.KINEMATIC)
        agent.position = (256.0, 400.0)
        agent_shape = pymunk.Circle(agent, AGENT_RADIUS)
        space.add(agent, agent_shape)

        block = pymunk.Body(BLOCK_MASS, BLOCK_MOMENT)
        boxes = [pymunk.Poly(block, [tuple(v) for v in box]) for box in T_VERTICES]
        block.center_of_gravity = T_CENTER_OF_GRAVITY
        block.angle = 0.0
        block.position = (256.0, 300.0)
        space.add(block, *boxes)

        space.on_collision(0, 0, post_solve=self._count_contacts)
        self._space = space
        self._agent = agent
        self._block = block
        self._shapes = [*walls, agent_shape, *boxes]
        self._shape_index = {_ptr(s._shape): i for i, s in enumerate(self._shapes)}
        self._fix_slots = frozenset()
        self._contact_buffers = {}

    def _count_contacts(self, arbiter: pymunk.Arbiter, space: pymunk.Space, data: Any) -> None:
        self._n_contact_points += arbiter._arbiter.count

    def _set_state(self, state: np.ndarray) -> None:
        """Place agent and block (angle first, then position) and run one physics step."""
        self._agent.velocity = (0.0, 0.0)
        self._agent.position = (float(state[0]), float(state[1]))
        self._block.velocity = (0.0, 0.0)
        self._block.angular_velocity = 0.0
        self._block.angle = float(state[4])
        self._block.position = (float(state[2]), float(state[3]))
        self._space.step(DT)

    def _physics_steps(self, tx: float, ty: float) -> None:
        """One control step: 10 physics steps of the PD law toward target (tx, ty)."""
        agent, space = self._agent, self._space
        if self._fix_slots:
            self._physics_step_after_restore(tx, ty)
            first = 1
        else:
            first = 0
        # The PD law and Chipmunk's step through the C API directly: this loop is the hot path.
        body, cp_space = agent._body, space._space
        get_p, get_v, set_v, cp_step = (
            lib.cpBodyGetPosition,
            lib.cpBodyGetVelocity,
            lib.cpBodySetVelocity,
            lib.cpSpaceStep,
        )
        for _ in range(first, SUBSTEPS):
            p = get_p(body)
            v = get_v(body)
            vx = v.x + (K_P * (tx - p.x) + K_V * (0.0 - v.x)) * DT
            vy = v.y + (K_P * (ty - p.y) + K_V * (0.0 - v.y)) * DT
            set_v(body, (vx, vy))
            cp_step(cp_space, DT)

    # ---------------------------------------------------------------------------- gym API ----
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if options is not None and not isinstance(options, dict):
            raise ValueError(f"options must be a dict or None, got {type(options).__name__}")
        state = None if options is None else options.get("reset_to_state")
        if state is not None:
            state = np.asarray(state, dtype=np.float64)
            if state.shape != (5,) or not np.all(np.isfinite(state)):
                raise ValueError(
                    "options['reset_to_state'] must be 5 finite numbers "
                    f"[agent x, agent y, block x, block y, block angle], got {options['reset_to_state']!r}"
                )
        else:
            rng = self.np_random
            state = np.array(
                [
                    rng.integers(50, 450),
                    rng.integers(50, 450),
                    rng.integers(100, 400),
                    rng.integers(100, 400),
                    rng.uniform(-np.pi, np.pi),
                ],
                dtype=np.float64,
            )
        self._build_space()
        self._last_action = None
        self._n_contact_points = 0
        self._set_state(state)
        cov = self._coverage()
        return self._get_obs(), self._get_info(cov)

    def step(self, action):
        if self._space is None:
            raise RuntimeError("call reset() before step()")
        tx, ty = self._check_action(action)
        self._last_action = np.array([tx, ty])
        self._n_contact_points = 0
        self._physics_steps(tx, ty)
        cov = self._coverage()
        reward = float(np.clip(cov / SUCCESS_THRESHOLD, 0.0, 1.0))
        terminated = bool(cov > SUCCESS_THRESHOLD)
        return self._get_obs(), reward, terminated, False, self._get_info(cov)

    def render(self):
        if self.render_mode is None:
            gym.logger.warn(
                "You are calling render method without specifying any render mode. "
                "Pass render_mode='rgb_array' to PushTEnv."
            )
            return None
        from dplearn.envs.render import render_state

        if self._space is None:
            raise RuntimeError("call reset() before render()")
        return render_state(
            self._state_vector(),
            size=self.render_size,
            goal_pose=self.goal_pose,
            action=self._last_action,
        )

    def close(self) -> None:
        self._space = None

    # ------------------------------------------------------------------------ observations --
    @staticmethod
    def _check_action(action) -> tuple[float, float]:
        try:
            a = np.asarray(action, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"action must be a target position (x, y) of 2 numbers, got {action!r}"
            ) from exc
        if a.shape != (2,):
            raise ValueError(f"action must have shape (2,) (target x, y), got shape {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"action must be finite, got {a.tolist()}")
        return float(a[0]), float(a[1])

    def _block_pose(self) -> tuple[float, float, float]:
        x, y = self._block.position
        return float(x), float(y), float(self._block.angle)

    def _state_vector(self) -> np.ndarray:
        ax, ay = self._agent.position
        bx, by, angle = self._block_pose()
        return np.array([ax, ay, bx, by, angle % (2 * np.pi)], dtype=np.float64)

    def _coverage(self) -> float:
        return coverage(self._block_pose(), self._goal)

    def _get_obs(self):
        if self.obs_type == "state":
            return self._state_vector()
        if self.obs_type == "keypoints":
            ax, ay = self._agent.position
            return np.r_[t_keypoints(self._block_pose()).ravel(), ax, ay].astype(np.float64)
        from dplearn.envs.render import render_state

        pixels = render_state(self._state_vector(), size=self.obs_size, goal_pose=self.goal_pose)
        if self.obs_type == "pixels":
            return pixels
        return {"pixels": pixels, "agent_pos": np.array(self._agent.position, dtype=np.float64)}

    def _get_info(self, cov: float) -> dict[str, Any]:
        return {
            "coverage": float(cov),
            "is_success": bool(cov > SUCCESS_THRESHOLD),
            "block_pose": np.array(self._block_pose(), dtype=np.float64),
            "goal_pose": self.goal_pose.copy(),
            "n_contacts": int(math.ceil(self._n_contact_points / SUBSTEPS)),
        }

    # ----------------------------------------------------------------------- physics state --
    def get_physics_state(self) -> np.ndarray:
        """The complete physics state as a float64 vector of length ``PHYSICS_STATE_SIZE``.

        Layout: ``[0:2]`` agent position, ``[2:4]`` agent velocity, ``[4:6]`` block position
        (body origin, as observed), ``[6]`` block angle (not wrapped), ``[7:9]`` block velocity
        (of its centre of gravity), ``[9]`` block angular velocity, ``[10:12]`` block centre of
        gravity in the world frame (what the integrator advances), ``[12:15]`` the block's bias
        velocity (linear, angular) left by the last solve, ``[15:]`` the contact solver's cache
        (cached impulses that warm-start the next solve; opaque).

        With ``broadphase="tree"`` the bounding-box tree's own cache is not part of the state, so
        replays from a restored state are exact only until shapes overlap deeply.
        """
        if self._space is None:
            raise RuntimeError("call reset() before get_physics_state()")
        if not _check_body_layout():
            raise RuntimeError(
                f"pymunk {pymunk.version}: unrecognised body memory layout; exact physics "
                "state save/restore is not available with this version"
            )
        s = np.zeros(PHYSICS_STATE_SIZE, dtype=np.float64)
        agent, block = self._agent, self._block
        s[_S_AGENT_POS] = tuple(agent.position)
        s[_S_AGENT_VEL] = tuple(agent.velocity)
        s[_S_BLOCK_POS] = tuple(block.position)
        f = _body_fields(block)
        s[_S_BLOCK_ANGLE] = f[_A]
        s[_S_BLOCK_VEL] = f[_V], f[_V + 1]
        s[_S_BLOCK_ANGVEL] = f[_W]
        s[_S_BLOCK_COG] = f[_P], f[_P + 1]
        s[_S_BLOCK_VBIAS] = f[_V_BIAS], f[_V_BIAS + 1]
        s[_S_BLOCK_WBIAS] = f[_W_BIAS]
        stamp = lib.cpSpaceGetTimestamp(self._space._space)
        for slot, arb in self._cached_arbiters().items():
            count = arb.count
            if count == 0:
                continue  # no contacts to carry over: equivalent to no cached arbiter
            base = _S_CONTACTS + slot * _SLOT_SIZE
            s[base] = 1.0
            s[base + 1] = float((stamp - arb.stamp) & 0xFFFFFFFF)
            s[base + 2] = float(count)
            for k in range(count):
                con = arb.contacts[k]
                h = int(con.hash)
                c = base + 3 + 4 * k
                s[c : c + 4] = (h >> 32, h & 0xFFFFFFFF, con.jnAcc, con.jtAcc)
        return s

    def set_physics_state(self, state) -> None:
        """Restore a state from :meth:`get_physics_state` exactly (contact cache included).

        If the block position ``state[4:6]`` disagrees with the centre of gravity
        ``state[10:12]`` (a state edited by hand), the block is placed at ``state[4:6]`` with
        angle ``state[6]``.
        """
        s = np.asarray(state, dtype=np.float64)
        if s.shape != (PHYSICS_STATE_SIZE,) or not np.all(np.isfinite(s)):
            raise ValueError(
                f"state must be {PHYSICS_STATE_SIZE} finite numbers from get_physics_state(), "
                f"got shape {s.shape}"
            )
        if not _check_body_layout():
            raise RuntimeError(
                f"pymunk {pymunk.version}: unrecognised body memory layout; exact physics "
                "state save/restore is not available with this version"
            )
        if self._space is None:
            self._build_space()
            lib.cpSpaceSetCurrentTimeStep(self._space._space, DT)
        agent, block = self._agent, self._block
        agent.position = (float(s[0]), float(s[1]))
        agent.velocity = (float(s[2]), float(s[3]))

        angle = float(s[_S_BLOCK_ANGLE])
        c, sn = math.cos(angle), math.sin(angle)
        gx, gy = T_CENTER_OF_GRAVITY
        px, py = float(s[10]), float(s[11])
        ox, oy = px - (gx * c - gy * sn), py - (gx * sn + gy * c)
        if abs(ox - s[4]) > 1e-6 or abs(oy - s[5]) > 1e-6:
            px, py = float(s[4]) + (gx * c - gy * sn), float(s[5]) + (gx * sn + gy * c)
        f = _body_fields(block)
        f[_P], f[_P + 1] = px, py
        f[_V], f[_V + 1] = float(s[7]), float(s[8])
        f[_W] = float(s[9])
        f[_V_BIAS], f[_V_BIAS + 1] = float(s[12]), float(s[13])
        f[_W_BIAS] = float(s[14])
        block.angle = angle  # recomputes the body transform from (p, angle), as the integrator does

        self._restore_contacts(s)

    def _cached_arbiters(self) -> dict[int, Any]:
        """Chipmunk's cached arbiters (one per touching pair of shapes) by pair slot."""
        out = {}
        for arb in self._space._get_arbiters():
            i = self._shape_index.get(_ptr(arb.a))
            j = self._shape_index.get(_ptr(arb.b))
            if i is None or j is None:
                continue
            slot = _PAIR_SLOT.get((min(i, j), max(i, j)))
            if slot is not None:
                out[slot] = arb
        return out

    def _restore_contacts(self, s: np.ndarray) -> None:
        space = self._space
        stamp = lib.cpSpaceGetTimestamp(space._space)
        current = self._cached_arbiters()
        fix = set()
        for slot, (i, j) in enumerate(_PAIRS):
            base = _S_CONTACTS + slot * _SLOT_SIZE
            present = s[base] == 1.0
            arb = current.get(slot)
            if not present:
                if arb is not None:
                    # Emulate "no cached arbiter": nothing to warm-start from, and a first contact
                    # when touched next.
                    arb.count = 0
                    arb.contacts = ffi.NULL
                    arb.state = _STATE_CACHED
                    arb.stamp = (stamp - 3) & 0xFFFFFFFF
                    fix.add(slot)
                continue
            ticks = int(s[base + 1])
            count = int(s[base + 2])
            if not 1 <= count <= _MAX_CONTACTS or ticks < 0:
                raise ValueError(
                    f"state[{base}:{base + _SLOT_SIZE}] is not a valid contact-cache entry"
                )
            if arb is None:
                arb = lib.cpArbiterNew(self._shapes[i]._shape, self._shapes[j]._shape)
                contacts = lib.cpContactArrAlloc(count)  # copied and freed by AddCachedArbiter
                self._fill_contacts(contacts, s, base, count)
                arb.count = count
                arb.contacts = contacts
                arb.stamp = (stamp - ticks) & 0xFFFFFFFF
                arb.state = _STATE_NORMAL if ticks == 0 else _STATE_CACHED
                lib.cpSpaceAddCachedArbiter(space._space, arb)
            else:
                buf = self._contact_buffers.get(slot)
                if buf is None:
                    buf = self._contact_buffers[slot] = ffi.new("struct cpContact[]", _MAX_CONTACTS)
                self._fill_contacts(buf, s, base, count)
                arb.count = count
                arb.contacts = buf
                arb.stamp = (stamp - ticks) & 0xFFFFFFFF
                arb.state = _STATE_NORMAL if ticks == 0 else _STATE_CACHED
            if ticks > 0:
                fix.add(slot)
        self._fix_slots = frozenset(fix)

    @staticmethod
    def _fill_contacts(contacts, s: np.ndarray, base: int, count: int) -> None:
        for k in range(count):
            c = base + 3 + 4 * k
            con = contacts[k]
            con.hash = (int(s[c]) << 32) | int(s[c + 1])
            con.jnAcc = float(s[c + 2])
            con.jtAcc = float(s[c + 3])

    def _physics_step_after_restore(self, tx: float, ty: float) -> None:
        """The first physics step after a restore.

        Chipmunk marks every arbiter of the last solve as an ongoing contact at the start of a
        step; arbiters restored as "not touching last step" must instead count as first contacts
        when they touch (no warm start), which a pre-solve hook enforces for this one step.
        """
        space, agent = self._space, self._agent
        fix = self._fix_slots

        def pre_solve(arbiter, space_, data):
            arb = arbiter._arbiter
            if arb.state == _STATE_NORMAL:
                i = self._shape_index.get(_ptr(arb.a))
                j = self._shape_index.get(_ptr(arb.b))
                if (
                    i is not None
                    and j is not None
                    and _PAIR_SLOT.get((min(i, j), max(i, j))) in fix
                ):
                    arb.state = _STATE_FIRST

        space.on_collision(0, 0, pre_solve=pre_solve)
        try:
            px, py = agent.position
            vx, vy = agent.velocity
            vx += (K_P * (tx - px) + K_V * (0.0 - vx)) * DT
            vy += (K_P * (ty - py) + K_V * (0.0 - vy)) * DT
            agent.velocity = (vx, vy)
            space.step(DT)
        finally:
            space.on_collision(0, 0, pre_solve=pymunk.empty_callback)
            self._fix_slots = frozenset()

    def simulate(self, actions) -> dict[str, np.ndarray]:
        """Roll the physics forward through ``actions`` (T, 2) and restore the current state.

        Returns ``{"states": (T, 5), "coverage": (T,), "reward": (T,)}``: the state observation,
        coverage and reward after each action. The environment is left exactly as it was
        (physics, contact cache, last action), so this is a planner's look-ahead.
        """
        acts = np.asarray(actions, dtype=np.float64)
        if acts.ndim != 2 or acts.shape[1] != 2 or not np.all(np.isfinite(acts)):
            raise ValueError(
                f"actions must be a finite array of shape (T, 2), got shape {acts.shape}"
            )
        saved = self.get_physics_state()
        saved_contacts, saved_action = self._n_contact_points, self._last_action
        states = np.empty((len(acts), 5))
        cov = np.empty(len(acts))
        try:
            for t, (tx, ty) in enumerate(acts):
                self._physics_steps(float(tx), float(ty))
                states[t] = self._state_vector()
                cov[t] = self._coverage()
        finally:
            self.set_physics_state(saved)
            self._n_contact_points, self._last_action = saved_contacts, saved_action
        return {
            "states": states,
            "coverage": cov,
            "reward": np.clip(cov / SUCCESS_THRESHOLD, 0.0, 1.0),
        }
