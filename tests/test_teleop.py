"""Teleoperation logic without a browser: recordings follow the shipped demos' format and replay
exactly, mouse-follow steps at 10 Hz with the pointer as the target, keys and buttons move the
pusher the way their arrows point *in the picture*, and saving never loses or overwrites anything.
(tests/test_teleop_browser.py drives the same panel in a real browser.)"""

from __future__ import annotations

import numpy as np
import pytest

from dplearn.data import load_demos, load_pusht_demos
from dplearn.envs import PushTEnv
from dplearn.teleop import TeleopController, TeleopSession, free_path, teleop_widget

# the pusher's fill colour in the top-down picture (RoyalBlue lightened), found by looking at one
BLUE = np.array([78, 126, 255])


def pusher_pixel_centre(image: np.ndarray) -> np.ndarray:
    """(row, column) centre of the pusher's blue pixels in a rendered picture."""
    rows, cols = np.nonzero(np.all(np.abs(image.astype(int) - BLUE) <= 12, axis=-1))
    assert rows.size > 20, "no pusher in the picture"
    return np.array([rows.mean(), cols.mean()])


def drive(session, moves, step_px=15):
    for dx, dy in moves:
        session.move(dx, dy, step_px=step_px)


def replay(states0: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """Reset a fresh env to ``states0`` and apply ``actions``: the observed states, float32."""
    env = PushTEnv(obs_type="state")
    obs, _ = env.reset(options={"reset_to_state": states0.astype(np.float64)})
    seen = []
    for a in actions:
        seen.append(np.asarray(obs, dtype=np.float32))
        obs, *_ = env.step(a.astype(np.float64))
    return np.stack(seen)


def test_recorded_steps_replay_exactly_in_a_fresh_env():
    s = TeleopSession(seed=11)
    # the start is the seeded benchmark start, rounded to float32
    obs, _ = PushTEnv(obs_type="state").reset(seed=11)
    np.testing.assert_allclose(s.state, obs, atol=1e-3)
    drive(s, [(1, 0)] * 4 + [(0, 1)] * 3 + [(0, 0)] * 2)
    s.step([301.37, 122.9])
    states, actions = np.stack(s.states), np.stack(s.actions)
    assert states.shape == (10, 5) and actions.shape == (10, 2)
    np.testing.assert_array_equal(replay(states[0], actions), states)  # bit for bit
    # the target moved by 15 px per press from the pusher's start
    np.testing.assert_allclose(actions[3], states[0][:2] + [60, 0], atol=1e-3)


def test_recordings_have_the_shipped_demos_format(tmp_path):
    s = TeleopSession(seed=4, max_steps=50)  # a shorter cap does not change the env's numbers
    drive(s, [(1, 1)] * 3)
    s.keep()
    drive(s, [(0, 1)] * 2)
    s.discard()
    drive(s, [(-1, 0)] * 4)
    s.keep()
    mine = load_demos(s.save(tmp_path / "mine.npz"))
    shipped = load_pusht_demos()
    assert set(mine.meta) == set(shipped.meta)
    assert set(mine.meta["env"]) == set(shipped.meta["env"])
    for key, value in shipped.meta["env"].items():  # the same environment
        assert mine.meta["env"][key] == value, key
    assert set(mine.meta["expert"]) == set(shipped.meta["expert"])
    assert set(mine.meta["episode_length"]) == set(shipped.meta["episode_length"])
    assert mine.meta["seeds"] == [4, 6] and mine.meta["failed_seeds"] == [5]
    assert mine.meta["attempts"] == 3 and mine.meta["start_rule"] == shipped.meta["start_rule"]
    assert mine.episode_lengths.tolist() == [3, 4]
    for name in ("state", "action", "episode_ends"):
        assert getattr(mine, name).dtype == getattr(shipped, name).dtype
        assert getattr(mine, name).shape[1:] == getattr(shipped, name).shape[1:]
    for states, actions in mine.episodes():  # each loaded episode replays exactly
        np.testing.assert_array_equal(replay(states[0], actions), states)


def test_keep_discard_and_save_never_overwrite(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = TeleopSession(seed=0)
    with pytest.raises(ValueError, match="no episode kept"):
        s.save("a.npz")
    drive(s, [(1, 1)] * 3)
    assert s.keep()
    assert not s.keep()  # nothing recorded in the fresh episode
    written = s.save("a.npz")
    assert written == tmp_path / "a.npz" and written.is_absolute()
    before = written.read_bytes()
    drive(s, [(0, -1)] * 2)
    s.keep()
    with pytest.raises(ValueError, match="path .*a.npz.* exists.*a-1.npz"):
        s.save("a.npz")
    assert written.read_bytes() == before  # untouched
    assert len(s.kept) == 2  # a failed save loses nothing
    with pytest.raises(ValueError, match="path must end in .npz"):
        s.save("a.txt")
    # the controller saves to the next free name and says where, absolute
    ctl = TeleopController(s)
    note = ctl.save("a.npz")
    assert str(tmp_path / "a-1.npz") in note and "a.npz exists" in note
    assert load_demos(tmp_path / "a-1.npz").n_episodes == 2
    assert free_path("a.npz") == tmp_path / "a-2.npz"
    assert free_path("a-1.npz") == tmp_path / "a-2.npz"
    # a save that fails (a file where the folder should be) keeps the episodes and says so
    note = ctl.save(tmp_path / "a.npz" / "b.npz")
    assert note.startswith("not saved") and len(s.kept) == 2
    s.save("a.npz", overwrite=True)
    assert load_demos("a.npz").n_episodes == 2


def test_time_limit_and_bad_input():
    s = TeleopSession(seed=1, max_steps=3)
    drive(s, [(0, 0)] * 3)
    assert s.done
    with pytest.raises(ValueError, match="episode is over"):
        s.step([100, 100])
    s.new_episode()
    with pytest.raises(ValueError, match="target"):
        s.step([1.0, np.nan])
    s.step([900.0, -5.0])
    np.testing.assert_array_equal(s.actions[-1], [512.0, 0.0])  # clipped into the workspace
    for kwargs, name in [({"seed": -1}, "seed"), ({"max_steps": 0}, "max_steps"),
                         ({"seed": 1.5}, "seed")]:
        with pytest.raises(ValueError, match=name):
            TeleopSession(**kwargs)
    with pytest.raises(ValueError, match="step_px"):
        TeleopController(s, step_px=0)
    with pytest.raises(ValueError, match="hz"):
        TeleopController(s, hz=float("nan"))
    with pytest.raises(ValueError, match="session"):
        TeleopController("not a session")
    with pytest.raises(ValueError, match="width"):
        TeleopController(s).pointer(3, 4, 0, 100)


def follow(ctl, path, seconds, dt=0.013, t0=100.0, size=320):
    """Move the pointer along ``path(t)`` (workspace units) for ``seconds`` on a fake clock,
    reporting it every ``dt`` s the way the browser does, and tick the controller each time.
    Returns the times at which steps were taken."""
    taken, t = [], t0
    while t < t0 + seconds:
        x, y = path(t - t0)
        ctl.pointer(x / 512 * size, y / 512 * size, size, size)
        for _ in range(ctl.tick(t)):
            taken.append(t)
        t += dt
    return taken


def test_mouse_follow_steps_at_10_hz_towards_the_pointer():
    s = TeleopSession(seed=3)
    ctl = TeleopController(s)
    start = s.state[:2].copy()
    goal = start + np.array([120.0, -80.0]) * np.sign(256 - start)  # towards the middle

    def path(t):  # the pointer glides from the pusher to `goal` in 1 s, then stays
        return start + min(t, 1.0) * (goal - start)

    assert follow(ctl, path, 0.5) == [] and s.steps == 0  # not recording: nothing happens
    ctl.toggle_recording(0.0)
    taken = follow(ctl, path, 2.0, t0=200.0)
    assert len(taken) == 20 and s.steps == 20  # 10 steps per second of pointer movement
    gaps = np.diff(taken)
    assert np.all(np.abs(gaps - 0.1) <= 0.013 + 1e-9)  # each one period apart (to one report)
    # each action is the pointer where it was at that step (the latest report)
    expected = np.array([path(t - 200.0) for t in taken], dtype=np.float32)
    np.testing.assert_allclose(np.stack(s.actions), expected, atol=1e-3)
    # and the pusher went to the pointer
    assert np.linalg.norm(s.state[:2] - goal) < 0.25 * np.linalg.norm(start - goal)
    # pointer away: pause; back after a long gap: no burst of missed steps
    ctl.leave()
    assert ctl.tick(205.0) == 0
    ctl.pointer(160, 160, 320, 320)
    assert ctl.tick(209.0) == 1 and ctl.tick(209.05) == 0 and ctl.tick(209.1) == 1
    # a click stops recording; keep starts a fresh episode with recording off
    ctl.toggle_recording(210.0)
    assert ctl.tick(211.0) == 0
    ctl.toggle_recording(212.0)
    assert ctl.tick(212.0) == 1
    assert ctl.key("k", 212.5) == "kept the episode (23 steps)" and not ctl.recording
    assert s.steps == 0 and len(s.kept) == 1


def test_arrow_keys_and_buttons_move_the_pusher_as_drawn():
    """'↑' must move the pusher up in the picture, '→' right: found from the rendered pixels,
    not from the direction table."""
    for seed in (2, 8):
        s = TeleopSession(seed=seed)
        ctl = TeleopController(s, step_px=12)
        for key, along, sign in [("ArrowUp", 0, -1), ("ArrowRight", 1, +1),
                                 ("ArrowDown", 0, +1), ("ArrowLeft", 1, -1)]:
            before = pusher_pixel_centre(s.frame(size=256))
            for k in range(4):
                ctl.key(key, now=10.0 + k)
            for k in range(4):
                ctl.key("w", now=20.0 + k)  # wait: same target, the pusher catches up
            moved = pusher_pixel_centre(s.frame(size=256)) - before
            assert sign * moved[along] > 0.5 * 4 * 12 / 2, (seed, key, moved)  # ≥ half the way
            assert abs(moved[1 - along]) < 0.35 * abs(moved[along]), (seed, key, moved)


def test_held_key_repeats_at_10_hz_and_other_keys():
    s = TeleopSession(seed=5)
    ctl = TeleopController(s)
    # a held arrow: the browser repeats the key every 33 ms for 1 s
    for k in range(30):
        ctl.key("ArrowRight", now=50.0 + k / 30, repeat=k > 0)
    assert s.steps == 10
    ctl.key("x", now=52.0)  # not a command
    assert s.steps == 10
    assert ctl.key("d", now=53.0) == "discarded" and s.steps == 0
    assert ctl.key("r", now=54.0) == "recording" and ctl.recording
    assert ctl.key("R", now=54.1) == "recording stopped"
    ctl.key(" ", now=55.0)
    assert s.steps == 1 and np.array_equal(s.actions[0], s.states[0][:2])  # wait: stay put


def test_a_held_button_repeats_at_10_hz():
    s = TeleopSession(seed=9)
    ctl = TeleopController(s, step_px=5)
    x0 = s.target[0]
    ctl.hold(1, 0, now=30.0)
    taken = [ctl.tick(30.0 + k / 100) for k in range(150)]  # held for 1.5 s, ticked every 10 ms
    assert sum(taken) == 15 and s.steps == 15
    np.testing.assert_allclose(s.target[0], x0 + 15 * 5, atol=1e-3)  # 5 px per step, +x
    assert abs(ctl.wait_time(31.5) - 0.0) < 0.1 + 1e-9
    ctl.release()
    assert ctl.tick(40.0) == 0 and ctl.wait_time(40.0) is None
    with pytest.raises(ValueError, match="dx"):
        ctl.hold(2, 0, now=41.0)


def test_widget_buttons_drive_the_session_and_show_a_picture_elsewhere():
    pytest.importorskip("ipywidgets")
    panel = teleop_widget(TeleopSession(seed=3), size=64, mode="buttons")
    try:
        s = panel.session
        assert "wait" in panel.buttons and "·" not in panel.buttons
        assert "step" in panel.help_text
        before = pusher_pixel_centre(s.frame(size=256))
        for _ in range(4):
            panel.buttons["↑"].click()
        for _ in range(3):
            panel.buttons["wait"].click()
        assert s.steps == 7
        assert pusher_pixel_centre(s.frame(size=256))[0] < before[0] - 3  # up in the picture
        panel.buttons["keep episode"].click()
        assert len(s.kept) == 1
        bundle = panel._repr_mimebundle_()
        assert "application/vnd.jupyter.widget-view+json" in bundle
        page = bundle["text/html"]
        assert "data:image/png;base64," in page and "colab.research.google.com" in page
        assert "run this chapter in Jupyter or Colab" in page
    finally:
        panel.stop()


def test_mouse_mode_needs_ipyevents_or_falls_back():
    pytest.importorskip("ipywidgets")
    try:
        import ipyevents  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="ipyevents"):
            teleop_widget(TeleopSession(seed=0), mode="mouse")
        assert teleop_widget(TeleopSession(seed=0), size=64).mode == "buttons"
    else:
        panel = teleop_widget(TeleopSession(seed=0), size=64)
        panel.stop()
        assert panel.mode == "mouse"
        assert sum(e.source is panel.image for e in panel.events) == 2  # pointer, keys
        assert len(panel.events) == 2 + len(panel.buttons) - 3  # and each pad button (held)
    with pytest.raises(ValueError, match="mode"):
        teleop_widget(TeleopSession(seed=0), mode="joystick")
