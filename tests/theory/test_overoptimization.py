"""The room along a trajectory (theory layer): the gain within the room at every step on random
instances, exactly on a labelled sample, attained by a point-mass truth; the no-floor example;
seeded random trajectories."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from w2s_utils import metrics
from w2s_utils import theory as T

SETTINGS = settings(derandomize=True)


seeds = st.integers(0, 2**31 - 1)


def _trajectory_instance(seed: int, k: int, n: int, steps: int):
    """Teacher, ground truth and students that move from an independent start to the teacher."""
    rng = np.random.default_rng(seed)
    weak = rng.dirichlet(np.ones(k), size=n)
    f_star = rng.dirichlet(np.ones(k), size=n)
    start = rng.dirichlet(np.ones(k), size=n)
    lam = np.linspace(0.0, 1.0, steps)[:, None, None]
    students = (1 - lam) * start + lam * weak
    floor = 1e-3
    mix = lambda p: (1 - k * floor) * p + floor  # noqa: E731 (floor by mixing with uniform)
    return mix(weak), mix(f_star), mix(students)


@pytest.mark.slow
@SETTINGS
@given(seed=seeds, k=st.integers(2, 5), n=st.integers(1, 25), steps=st.integers(2, 8))
def test_gain_within_room_at_every_step(seed, k, n, steps):
    weak, f_star, students = _trajectory_instance(seed, k, n, steps)
    res = T.trajectory_room(weak, students, f_star=f_star)
    assert res.holds and res.steps == steps
    for t in range(steps):
        w, s, f = (torch.as_tensor(a) for a in (weak, students[t], f_star))
        gain = float((metrics.kl(f, w) - metrics.kl(f, s)).mean())  # independent: Err by KL
        lr = w.log() - s.log()
        assert gain == pytest.approx(res.gain[t], abs=1e-10)
        assert -float(lr.amax(-1).mean()) - 1e-12 <= gain <= -float(lr.amin(-1).mean()) + 1e-12
        assert res.room[t] <= res.log_room[t] + 1e-12 <= res.two_sided_room[t] + 1e-12
        assert res.gain_lower[t] == pytest.approx(-float(lr.amax(-1).mean()), abs=1e-12)
    # the student that equals its teacher has no room left
    assert res.room[-1] == pytest.approx(0.0, abs=1e-12)
    assert res.best_gain == max(res.gain) and res.max_room == max(res.room)


@pytest.mark.slow
@SETTINGS
@given(seed=seeds, k=st.integers(2, 4), n=st.integers(2, 40))
def test_room_holds_exactly_on_a_labelled_sample(seed, k, n):
    """With hard labels the test-CE difference lies inside the empirical room deterministically."""
    weak, _, students = _trajectory_instance(seed, k, n, 4)
    y = np.random.default_rng(seed + 1).integers(0, k, size=n)
    res = T.trajectory_room(weak, students, labels=y)
    ce = lambda p: float(metrics.log_loss(torch.as_tensor(p), torch.as_tensor(y)))  # noqa: E731
    for t in range(4):
        assert res.gain[t] == pytest.approx(ce(weak) - ce(students[t]), abs=1e-10)
    assert res.holds


def test_room_is_attained_by_a_point_mass_truth():
    weak, _, students = _trajectory_instance(3, 3, 20, 3)
    for t in range(3):
        truth = T.worst_case_truth(weak, students[t], side="upper")  # argmax_j r_j: largest gain
        res = T.trajectory_room(weak, students[t : t + 1], f_star=truth)
        assert res.gain[0] == pytest.approx(res.room[0], abs=1e-9)


def test_room_without_truth_and_bad_inputs():
    weak, _, students = _trajectory_instance(0, 2, 10, 3)
    res = T.trajectory_room(weak, list(students))
    assert res.gain is None and res.best_step is None and res.holds and res.source == "none"
    assert "Room along a trajectory" in str(res)
    with pytest.raises(ValueError, match="students"):
        T.trajectory_room(weak, [])
    with pytest.raises(ValueError, match="at most one"):
        T.trajectory_room(weak, students, f_star=weak, labels=np.zeros(10, int))
    with pytest.raises(ValueError, match="students"):
        T.trajectory_room(weak, np.ones((2, 3, 4, 2)) / 2)


def test_no_floor_small_eps_large_room():
    """Chapter 2: without a floor a tiny eps does not force a small room (or gain)."""
    d = 1e-8
    weak, student = np.array([[1 - d, d]]), np.array([[1 - d**0.5, d**0.5]])
    a = 1 / math.log(1 / d)
    res = T.trajectory_room(weak, student[None], f_star=np.array([[1 - a, a]]))
    assert res.eps[0] < 2e-4 and res.gain[0] > 0.4 and res.room[0] >= res.gain[0]


def test_random_trajectory_instance():
    f_star, weak, students = T.random_trajectory(3, n=12, n_classes=4, steps=5, floor=1e-3)
    assert f_star.shape == weak.shape == (12, 4) and students.shape == (5, 12, 4)
    assert float(students.min()) >= 1e-3 - 1e-15 and float(weak.min()) >= 1e-3 - 1e-15
    torch.testing.assert_close(students[-1], weak)
    torch.testing.assert_close(students.sum(-1), torch.ones(5, 12, dtype=torch.float64))
    with pytest.raises(ValueError, match="steps"):
        T.random_trajectory(0, steps=1)
