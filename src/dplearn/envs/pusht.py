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
- with ``control="velocity"`` (chapter 10) an action is a displacement ``d`` instead and the target
  of the step is ``a = p_t + d``, ``p_t`` the pusher's position at the start of the step (see
  :class:`PushTEnv`);
- the block is one body of mass 1 made of two boxes (see :mod:`dplearn.envs.geometry`) with
  moment of inertia ``2 × moment_for_poly(1, bar)`` = 3000 and centre of gravity (0, 45);
- coverage = area(block ∩ goal) / area(goal) for the goal pose (256, 256, π/4);
  reward = clip(coverage / 0.95, 0, 1); success, and termination, when coverage > 0.95;
  the registered env ``dplearn/PushT-v0`` truncates after 300 steps;
- reset with ``seed=s``: the benchmark's start for ``s``, drawn with the legacy generator
  ``rs = np.random.RandomState(s)`` exactly as Diffusion Policy's Push-T env draws it:
  agent ``rs.randint(50, 450)`` twice, block ``rs.randint(100, 400)`` twice, angle
  ``rs.randn() · 2π − π``. So ``reset(seed=100000 + i)``, i = 0..49, are the paper's 50 test
  starts. Setting a state sets the block's angle before its position, so the observed state is
  the one asked for, then runs one physics step to settle contacts (as the reference does).

Observations (``obs_type``):

- ``"state"``: (agent x, agent y, block x, block y, block angle mod 2π), float64, shape (5,);
- ``"keypoints"``: the benchmark's low-dimensional observation, 9 keypoints on the block
  (:data:`~dplearn.envs.geometry.T_KEYPOINTS`, chosen by farthest-point sampling over the T) in
  world coordinates, then the agent position: shape (20,), ``[x_1, y_1, ..., x_9, y_9, agent x,
  agent y]``;
- ``"pixels"``: a top-down 96 × 96 × 3 uint8 image (:func:`~dplearn.envs.render.render_state`), the
  benchmark's image observation: the whole workspace at 5.3 units per pixel — walls, goal T, block
  and pusher;
- ``"pixels_agent_pos"``: ``{"pixels": image, "agent_pos": (x, y)}``;
- ``"two-cameras"`` (chapter 9): ``{"pixels": top image, "wrist_pixels": wrist image, "agent_pos":
  (x, y)}``. The second camera (:func:`~dplearn.envs.render.render_wrist`) travels with the pusher:
  a 96 × 96 × 3 uint8 picture of the 128 × 128-unit square around it (4× the top view's
  resolution, 1.33 units per pixel), pusher at the centre, not rotating — what a camera on the
  robot's wrist would see of the contact between pusher and block; the top camera sees the whole
  scene coarsely.

Physics follows the reference implementation step for step: the same bodies, shapes, constants
and solver, and Chipmunk's default bounding-box-tree broad phase, so that the same start and the
same actions give gym-pusht's trajectory (a test replays recorded gym-pusht rollouts). The tree
keeps history (it starts each contact search from the previous step's closest features), which is
why the environment offers no physics save/restore: a restored state could replay differently from
the original once shapes overlap deeply.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
import pymunk
from gymnasium import spaces
from pymunk._chipmunk import lib

from dplearn import validate
from dplearn.envs.benchmark import (
    GOAL_POSE,
    IMAGE_OBS_TYPES,
    OBS_TYPES,
    SUCCESS_THRESHOLD,
    WORKSPACE_SIZE,
    benchmark_start,
)
from dplearn.envs.geometry import (
    T_CENTER_OF_GRAVITY,
    T_KEYPOINTS,
    T_RADIUS,
    T_VERTICES,
    coverage,
    t_keypoints,
)

__all__ = [
    "PushTEnv",
    "OBS_TYPES",
    "IMAGE_OBS_TYPES",
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
    "START_DISTRIBUTIONS",
    "CONTROLS",
    "benchmark_start",
]

START_DISTRIBUTIONS = ("benchmark", "uniform")
#: What an action means: ``"position"`` a target position (the benchmark's), ``"velocity"`` a
#: displacement from the pusher's current position (robomimic's delta control). Chapter 10.
CONTROLS: tuple[str, ...] = ("position", "velocity")
RESET_OPTIONS = ("reset_to_state",)

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

class PushTEnv(gym.Env):
    """The Push-T environment (gymnasium API). Introduced in chapter 5.

    Args:
        obs_type: ``"state"`` (5,), ``"keypoints"`` (20,), ``"pixels"`` (96, 96, 3) uint8,
            ``"pixels_agent_pos"`` (dict) or ``"two-cameras"`` (dict: top and wrist images and the
            pusher's position); see the module docstring.
        render_mode: ``None`` or ``"rgb_array"``; :meth:`render` then returns a
            ``(render_size, render_size, 3)`` uint8 image with the last target marked by a cross.
        render_size: side of the image returned by :meth:`render`, in pixels.
        obs_size: side of the image observations, in pixels (96 in the benchmark), both cameras.
        start: how :meth:`reset` draws a start when no state is given. ``"benchmark"``
            (default): the legacy ``np.random.RandomState(seed)`` draw of Diffusion Policy's env
            (see the module docstring), so seeds name the benchmark's starts.
            ``"uniform"``: agent and block positions uniform over the same integer ranges and the
            angle uniform in [−π, π), from gymnasium's ``np_random`` — the draw of Hugging Face's
            gym-pusht 0.1.8, whose seeds are therefore *not* the paper's test starts (gym-pusht
            also sets the block's position before its angle, so its block then turns about the
            centre of gravity; ours sets the angle first, as Diffusion Policy does).
        control: what an action means (chapter 10, the paper's "position vs velocity control"
            ablation). ``"position"`` (default, the benchmark's): ``a_t`` is the target position
            ``(x, y)`` of the PD law. ``"velocity"``: ``a_t = d_t`` is a displacement in pixels and the
            step's target is

            .. math:: \\text{target}_t = p_t + d_t,

            with ``p_t`` the pusher's position at the start of the step (the one the observation
            reported): robomimic's delta control, the command re-applied from wherever the pusher is
            at every step, so a tracking error carries over to the next step instead of being
            corrected by an absolute target. A position run with targets ``a_t`` is replayed by a
            velocity run with ``d_t = a_t − p_t``. Physics, reward and observations are the same in
            both modes; :attr:`action_space` is [0, 512]² for positions and [−512, 512]² for
            displacements.

    ``step(action)`` takes an action ``(x, y)``, shape (2,) (a target or a displacement), and returns
    ``(obs, reward, terminated, truncated, info)`` with ``info`` keys ``coverage``,
    ``is_success``, ``block_pose`` (x, y, θ), ``goal_pose`` and ``n_contacts`` (contact points per
    physics step, rounded up). ``reset(options={"reset_to_state": [ax, ay, bx, by, θ]})`` starts
    from a given state; any other option key is refused. Targets outside the workspace are
    accepted and not clipped, as in the benchmark (see :meth:`step`); they must be finite.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": CONTROL_HZ}

    def __init__(
        self,
        obs_type: str = "state",
        render_mode: str | None = None,
        render_size: int = 96,
        obs_size: int = 96,
        start: str = "benchmark",
        control: str = "position",
    ):
        super().__init__()
        self.control = validate.choice("control", control, CONTROLS)
        if start not in START_DISTRIBUTIONS:
            raise ValueError(f"start must be one of {list(START_DISTRIBUTIONS)}, got {start!r}")
        self.start = start
        if obs_type not in OBS_TYPES:
            raise ValueError(f"obs_type must be one of {list(OBS_TYPES)}, got {obs_type!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}"
            )
        self.obs_type = obs_type
        self.render_mode = render_mode
        self.render_size = validate.integer("render_size", render_size, low=8)  # pixels
        self.obs_size = validate.integer("obs_size", obs_size, low=8)
        self.goal_pose = np.array(GOAL_POSE, dtype=np.float64)
        self._goal = tuple(float(v) for v in GOAL_POSE)
        self.success_threshold = SUCCESS_THRESHOLD

        ws = WORKSPACE_SIZE
        low = 0.0 if control == "position" else -ws  # a target in the workspace, or a displacement
        self.action_space = spaces.Box(low=low, high=ws, shape=(2,), dtype=np.float64)
        agent_box = spaces.Box(low=0.0, high=ws, shape=(2,), dtype=np.float64)
        image_box = spaces.Box(low=0, high=255, shape=(obs_size, obs_size, 3), dtype=np.uint8)
        if obs_type == "state":
            self.observation_space = spaces.Box(
                low=np.zeros(5), high=np.array([ws, ws, ws, ws, 2 * np.pi]), dtype=np.float64
            )
        elif obs_type == "keypoints":
            n = 2 * len(T_KEYPOINTS)
            low = np.r_[np.full(n, -T_RADIUS), np.zeros(2)]
            high = np.r_[np.full(n, ws + T_RADIUS), np.full(2, ws)]
            self.observation_space = spaces.Box(low=low, high=high, dtype=np.float64)
        elif obs_type == "pixels":
            self.observation_space = image_box
        elif obs_type == "pixels_agent_pos":
            self.observation_space = spaces.Dict({"pixels": image_box, "agent_pos": agent_box})
        else:
            self.observation_space = spaces.Dict(
                {"pixels": image_box, "wrist_pixels": image_box, "agent_pos": agent_box})

        self._space: pymunk.Space | None = None
        self._n_contact_points = 0
        self._last_action: np.ndarray | None = None

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
        # The PD law and Chipmunk's step through the C API directly: this loop is the hot path.
        body, cp_space = agent._body, space._space
        get_p, get_v, set_v, cp_step = (
            lib.cpBodyGetPosition,
            lib.cpBodyGetVelocity,
            lib.cpBodySetVelocity,
            lib.cpSpaceStep,
        )
        for _ in range(SUBSTEPS):
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
        if options:
            unknown = sorted(set(options) - set(RESET_OPTIONS))
            if unknown:
                raise ValueError(f"options has unknown keys {unknown}; reset accepts {list(RESET_OPTIONS)}")
        state = None if options is None else options.get("reset_to_state")
        if state is not None:
            state = np.asarray(state, dtype=np.float64)
            if state.shape != (5,) or not np.all(np.isfinite(state)):
                raise ValueError(
                    "options['reset_to_state'] must be 5 finite numbers "
                    f"[agent x, agent y, block x, block y, block angle], got {options['reset_to_state']!r}"
                )
        elif self.start == "benchmark":
            # seed=None continues the env's own stream reproducibly after a seeded reset
            legacy_seed = seed if seed is not None else int(self.np_random.integers(2**31))
            state = benchmark_start(legacy_seed)
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
        """Move the pusher towards the target ``action`` = (x, y) for one control step (10 physics steps).

        With ``control="velocity"`` the target is ``p + action``, ``p`` the pusher's position now
        (at the start of the step); everything below holds for that target.

        ``action`` is any array-like of 2 finite numbers; NaN, ±inf or another shape raise
        ``ValueError`` naming the action. A target outside the workspace [0, 512]² is accepted and
        not clipped, as the benchmark does (its scores assume it): the pusher is a kinematic body,
        so the walls do not stop it, and it follows the target out of the workspace, where it
        cannot touch the block. The demonstrations and the policies trained on them stay inside.

        Returns ``(obs, reward, terminated, truncated, info)``; see the class docstring.
        """
        if self._space is None:
            raise RuntimeError("call reset() before step()")
        tx, ty = self._check_action(action, self.control)
        if self.control == "velocity":  # displacement from where the pusher is: target = p + d
            px, py = self._agent.position
            tx, ty = px + tx, py + ty
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
    def _check_action(action, control: str = "position") -> tuple[float, float]:
        what = "target position" if control == "position" else "displacement"
        try:
            a = np.asarray(action, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"action must be a {what} (x, y) of 2 numbers, got {action!r}"
            ) from exc
        if a.shape != (2,):
            raise ValueError(f"action must have shape (2,) ({what.split()[0]} x, y), got shape {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"action must be finite, got {a.tolist()}")
        return float(a[0]), float(a[1])

    def get_state(self) -> np.ndarray:
        """The current state (agent x, agent y, block x, block y, block angle mod 2π), shape (5,),
        whatever the observation type (the ``state`` observation)."""
        if self._space is None:
            raise RuntimeError("call reset() before get_state()")
        return self._state_vector()

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
        from dplearn.envs.render import render_cameras

        state = self._state_vector()
        if self.obs_type == "pixels":
            return render_cameras(state, ("top",), self.obs_size, self._goal)[0]
        agent_pos = np.array(self._agent.position, dtype=np.float64)
        if self.obs_type == "pixels_agent_pos":
            return {"pixels": render_cameras(state, ("top",), self.obs_size, self._goal)[0], "agent_pos": agent_pos}
        top, wrist = render_cameras(state, ("top", "wrist"), self.obs_size, self._goal)
        return {"pixels": top, "wrist_pixels": wrist, "agent_pos": agent_pos}

    def _get_info(self, cov: float) -> dict[str, Any]:
        return {
            "coverage": float(cov),
            "is_success": bool(cov > SUCCESS_THRESHOLD),
            "block_pose": np.array(self._block_pose(), dtype=np.float64),
            "goal_pose": self.goal_pose.copy(),
            "n_contacts": int(math.ceil(self._n_contact_points / SUBSTEPS)),
        }
