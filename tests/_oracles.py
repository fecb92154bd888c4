"""Independent reference solvers shared by the test files (scipy, not the library's solvers)."""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import minimize
from scipy.special import rel_entr


def slsqp_mixture_kl(weak: torch.Tensor, comps: torch.Tensor, direction: str) -> float:
    """min over mixture weights a (simplex) of E KL between the mixture sum_i a_i comps_i and weak.

    ``direction="reverse"``: E KL(mixture || weak) (the I-projection); ``"forward"``:
    E KL(weak || mixture) (the M-projection). SLSQP from uniform weights, tolerance 1e-14.
    """
    c, p = comps.numpy(), weak.numpy()

    def f(a: np.ndarray) -> float:
        m = np.tensordot(np.clip(a, 1e-15, None), c, axes=1)
        kl = rel_entr(m, p) if direction == "reverse" else rel_entr(p, m)
        return float(kl.sum(-1).mean())

    k = c.shape[0]
    res = minimize(
        f,
        np.full(k, 1 / k),
        method="SLSQP",
        bounds=[(0, 1)] * k,
        constraints=({"type": "eq", "fun": lambda a: a.sum() - 1},),
        options={"ftol": 1e-14, "maxiter": 500},
    )
    return float(res.fun)


def kl_rows(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Row-wise KL(p || q) in nats by scipy's ``rel_entr`` (an oracle independent of metrics.kl)."""
    return rel_entr(p, q).sum(-1)
