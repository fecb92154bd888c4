"""The planted mixture (:mod:`w2s_utils.engine.planted_mixture`): the reverse-KL student obeys the
theorem in sample."""

from __future__ import annotations

import math

import pytest
import torch

from tests._synthetic import planted_mixture_features
from w2s_utils.engine import planted_mixture as pm


@pytest.mark.slow
def test_planted_mixture_reverse_student_obeys_the_theorem_in_sample():
    xs, xw, gold = planted_mixture_features(0)
    for seed in range(3):
        task = pm.planted_mixture_from_features(xs, xw, gold, seed=seed)
        assert task.components.shape == (4, 240, 2)
        torch.testing.assert_close(
            task.f_star, torch.einsum("k,knc->nc", task.alpha_star, task.components)
        )
        tab = task.table.set_index(["student", "split"])
        assert tab.loc[("reverse KL (mixture)", "student-train"), "slack"] >= -1e-9
        row = tab.loc[("forward KL (mixture)", "test")]
        assert row.gain == pytest.approx(row.err_weak - row.err_student)
        assert row.slack == pytest.approx(row.gain - row.eps_rev)
        assert len(set(task.student_idx.tolist()) & set(task.test_idx.tolist())) == 0
        assert (task.table.gap == task.gap).all()
        rev_w = task.weights["reverse KL (mixture)"]
        assert tab.loc[("reverse KL (mixture)", "test"), "min_weight"] == float(rev_w.min())
        assert math.isnan(tab.loc[("forward KL (linear probe)", "test"), "min_weight"])
