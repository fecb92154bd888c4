"""One argument order across ``metrics``, ``theory`` and ``check``: the predictors first,
``(weak, student, ...)``, the truth as a keyword (``labels=``/``f_star=``); and the ``labels=``
forms added with it, checked against independent numpy computations."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from w2s_utils import check, metrics, theory

KEYWORD = inspect.Parameter.KEYWORD_ONLY


def _functions():
    for module in (metrics, theory, check):
        for name in module.__all__:
            fn = getattr(module, name)
            if inspect.isfunction(fn):
                yield f"{module.__name__}.{name}", inspect.signature(fn)


def test_predictors_come_first_and_the_truth_is_a_keyword():
    seen = 0
    for name, sig in _functions():
        params = list(sig.parameters)
        if "weak" in params and "student" in params:
            seen += 1
            assert params[:2] == ["weak", "student"], name
        for truth in ("labels", "f_star"):
            if truth in params and ("weak" in params or "student" in params):
                assert sig.parameters[truth].kind is KEYWORD, (name, truth)
    assert seen >= 15  # the rule has something to hold for


def _run(seed: int = 0, n: int = 80, k: int = 3):
    rng = np.random.default_rng(seed)
    f_star = rng.dirichlet(np.ones(k), n)
    weak = 0.6 * rng.dirichlet(np.ones(k), n) + 0.4 * f_star
    student = 0.5 * weak + 0.5 * f_star
    labels = np.array([rng.choice(k, p=p) for p in f_star])
    return weak, student, f_star, labels


def test_misfit_reads_weak_then_student():
    weak, student, _, _ = _run()
    kl_ws = np.mean(np.sum(weak * np.log(weak / student), 1))
    kl_sw = np.mean(np.sum(student * np.log(student / weak), 1))
    assert metrics.misfit(weak, student, "kl_weak_student") == pytest.approx(kl_ws)
    assert metrics.misfit(weak, student, "kl_student_weak") == pytest.approx(kl_sw)
    assert kl_ws != pytest.approx(kl_sw)  # the order matters, so the test can fail


def test_kl_misfit_gain_with_labels_is_the_test_estimate_with_its_standard_error():
    weak, student, _, y = _run()
    r = theory.kl_misfit_gain(weak, student, labels=y)
    rows = np.arange(len(y))
    d = np.log(student[rows, y]) - np.log(weak[rows, y])  # CE(weak) - CE(student) per example
    assert r.source == "labels" and r.gain == pytest.approx(d.mean())
    assert r.gain_se == pytest.approx(d.std(ddof=1) / np.sqrt(len(y)))
    assert r.eps_rev == pytest.approx(np.mean(np.sum(student * np.log(student / weak), 1)))
    assert r.lhs == r.eps_rev and r.rhs == r.gain
    exact = theory.kl_misfit_gain(weak, student, f_star=_run()[2])
    assert exact.source == "f_star" and exact.gain_se is None
    with pytest.raises(ValueError, match="exactly one"):
        theory.kl_misfit_gain(weak, student)


def test_error_decomposition_with_labels_is_the_one_hot_truths():
    weak, student, _, y = _run(1)
    lab = theory.error_decomposition(weak, student, labels=y)
    one_hot = theory.error_decomposition(weak, student, f_star=np.eye(3)[y])
    assert lab.as_dict() == pytest.approx(one_hot.as_dict())
    rows = np.arange(len(y))
    assert lab.gain == pytest.approx(np.mean(np.log(student[rows, y] / weak[rows, y])))


def test_truths_that_cannot_be_used_are_refused_with_the_reason():
    weak, student, f_star, y = _run(2)
    with pytest.raises(ValueError, match="labels: the forward-KL identity needs f_star"):
        theory.forward_kl_identity(weak, student, labels=y)
    with pytest.raises(ValueError, match="needs f_star"):
        theory.squared_misfit_gain_agnostic(weak, student, student, labels=y)
    # squared loss with class indices: the one-hot rows, an estimate of the population statement
    sq = theory.squared_misfit_gain(weak, student, labels=y)
    e = np.eye(3)[y]
    gain = np.mean(np.sum((weak - e) ** 2, 1)) - np.mean(np.sum((student - e) ** 2, 1))
    assert sq.gain == pytest.approx(gain) and sq.source == "labels"
    d = np.sum((weak - e) ** 2, 1) - np.sum((student - e) ** 2, 1)
    assert sq.gain_se == pytest.approx(d.std(ddof=1) / np.sqrt(len(y)))
    assert sq.misfit_sq == pytest.approx(metrics.misfit(weak, student, "squared"))
