"""Multi-class smooth calibration error: exact where it can be computed, else a certified bracket.

``smCE_K(F) = sup_w E <w(F(X)), Y - F(X)>`` over ``w: simplex -> [-1, 1]^K`` that are 1-Lipschitz
from the l1 to the l-infinity norm (``Y`` one-hot labels, or ``F*(X)``). Both the constraint
(``|w_k(p) - w_k(q)| <= ||p - q||_1`` for every ``k``) and the objective split over classes, so on
a sample of ``N`` points ``smCE_K = (1/N) sum_k V_k`` with, for the residual ``r_i = r_ik``,

    V = max sum_i w_i r_i   s.t.   |w_i| <= 1,   |w_i - w_j| <= d_ij = ||p_i - p_j||_1 (all pairs)

(McShane's extension ``min_j (w_j + ||p - p_j||_1)``, clipped to ``[-1, 1]``, extends any feasible
values to the whole simplex without raising its Lipschitz constant, so the LP over the sample
points is exact). This module computes ``V`` per class by the facts below, each proved here.

**(A) Only sources against sinks.** Let ``S = {r_i > 0}`` (sources, mass ``a_i = r_i``) and
``T = {r_j < 0}`` (sinks, mass ``b_j = -r_j``); points with ``r_i = 0`` do not enter. Keeping only
the constraints ``w_i - w_j <= d_ij`` for ``i in S, j in T`` (and the box) does not change ``V``.
Proof: it is a relaxation, so its value is ``>= V``. Take any of its feasible points, lower the
sinks to ``l_j = max(-1, max_{i in S} (w_i - d_ij)) <= w_j`` and raise the sources to
``u_i = min(1, min_{j in T} (l_j + d_ij)) >= w_i``; the objective ``sum a_i w_i - sum b_j w_j``
does not decrease. ``(u, l)`` is feasible for *all* pairs: ``l`` is a maximum and ``u`` a minimum
of 1-Lipschitz functions (clipped), hence 1-Lipschitz on ``T`` and on ``S``; ``u_i - l_j <= d_ij``
by the definition of ``u``; and ``l_j - u_i <= d_ij`` because either ``u_i = 1 >= l_j`` or
``u_i = l_{j'} + d_ij'`` and ``l_j - l_{j'} <= d_jj' <= d_ji + d_ij'``. So the relaxation's value
is attained by a feasible point of the full problem: the two values are equal. ∎

**(B) Lower bound from any witness.** The same two steps applied to *any* source values
``w_S`` in ``[-1, 1]`` give a point ``(u, l)`` feasible for all pairs, hence
``L = sum a_i u_i - sum b_j l_j <= V`` (the "fix-up"; two passes over ``S x T``).

**(C) Upper bound from any flow.** For any ``pi >= 0`` on source-sink arcs (weak duality),
``V <= max_{w in box} [sum a_i w_i - sum b_j w_j - sum pi_ij (w_i - w_j - d_ij)]
= sum pi_ij d_ij + sum_S |a_i - out_i| + sum_T |b_j - in_j|`` (``out``/``in``: the flow leaving a
source / entering a sink). The minimum over ``pi`` is ``V`` (LP duality: a transport of the
positive residual onto the negative one at cost ``d_ij``, each unit left over paid 1).

**(D) Column generation.** Solve the LP (A) restricted to an arc set ``E`` (start: each source's
and each sink's ``m`` nearest opposites in l1) with HiGHS; its flow (the LP's multipliers) gives
``U`` by (C), its source values give ``L`` by (B). Price every arc ``(i, j)`` against the LP's
``w``: those with ``w_i - w_j - d_ij > 0`` are violated; add the most violated per source and per
sink, re-solve. When nothing is violated the restricted optimum is feasible for (A), hence equal
to ``V`` (``exact``). Every round's ``[L, U]`` is certified whatever the solver's accuracy (``U``
and ``L`` are recomputed in float64 from a nonnegative flow and a feasible witness); the solver
only decides how tight they are. Memory: pricing runs over row chunks of ``S x T`` (a fixed
buffer), the arc set is capped (``ARC_CAP_PER_POINT`` arcs per point and class).

**(E) K = 2 is one-dimensional and exact.** With ``p = (1 - s, s)``, ``d_ij = 2|s_i - s_j|`` and
the residuals of the two classes are ``r`` and ``-r``; ``w -> -w`` maps one problem onto the other,
so ``smCE_2 = (2/N) max sum_i w(2 s_i) r_i`` over 1-Lipschitz ``w: R -> [-1, 1]``: the exact
dynamic programme :func:`w2s_utils.metrics.lipschitz_sup_1d`, O(N log N).

**(F) Entropic transport (``method="sinkhorn"``).** (C)'s minimum is a balanced transport once
a dummy sink (mass ``sum a``, reached from every source at cost 1) and a dummy source (mass
``sum b``, cost 1 to every sink, 0 to the dummy sink) are added. Sinkhorn's algorithm on it:
first dense, in float32, at ``eps = 0.02`` (cost units, ``d <= 2``; a coarse plan), then on the
arcs that carry each point's 16 largest plan entries (sparse, float64, log-stabilised, ``eps``
annealed down to ``5e-4``). Its plan, rounded into the marginals, is a nonnegative flow: ``U``
by (C). Its source potentials ``w_i = f_i + g_dummy`` (at the optimum ``f_i + g_j <= d_ij`` and
``f_i + g_dummy <= 1``): ``L`` by (B). Then one exact transport LP (HiGHS) on the plan's support
(arcs with mass above ``1e-8`` of the largest): its flow gives ``U``, its row duals ``y`` the
witness ``w_i = 1 - y_i`` for ``L``. The bracket is certified after any number of iterations
(both ends are recomputed in float64 from a nonnegative flow and a fixed-up witness); the
iterations only make it narrow. With a ``time_limit``, column generation (D) continues from the
support until then. Memory: the dense phase holds the largest class's ``|S| x |T|`` costs
(float64) and kernel (float32), about 28 bytes per pair (250 MB at ``N = 10^4``, ``K = 10``).

Cost (measured; see ``benchmarks/bench_metrics.py`` and its README table): exact in seconds up
to a few thousand points; the exact LP is a min-cost flow over ``|S| |T| ~ N^2 / K`` arcs per class
whose optimal flow uses long arcs (one sink's optimal source is often its 100th nearest), so at
``N = 10^4`` column generation takes minutes to exactness. The Sinkhorn path (F) is dominated by
its dense phase (40 passes over each class's ``|S| x |T|`` kernel) and two float64 fix-up passes;
measured at ``N = 10^4`` on the 2-core box under load 5-7: 80 s for ``K = 10`` (bracket 0.13%
wide), 51 s for ``K = 5`` (1.8% wide); at ``N = 2,000``: 5-12 s, 0.14-0.23% wide. It is not
exact: the bracket is reported.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy import sparse
from scipy.optimize import linprog

from w2s_utils import metrics
from w2s_utils._validate import check_int, check_number
from w2s_utils.theory._base import _probs, _target

#: Arcs per point and class the column generation may hold (caps its memory, see (D)).
ARC_CAP_PER_POINT = 48
#: Bytes per arc of one restricted LP, HiGHS included (measured order of magnitude, generous).
_BYTES_PER_LP_ARC = 400
#: Bytes of one stored arc (two int64 ends and a float64 length).
_BYTES_PER_ARC = 24
#: The row-chunk buffer of the pricing / certification passes (bytes of one float64 block).
_CHUNK_BYTES = 1 << 25
#: ``method="auto"`` solves one LP over all source-sink arcs up to this many (summed over classes).
AUTO_LP_ARCS = 50_000
#: ``method="auto"`` runs column generation (exact) up to this many source-sink arcs (summed over
#: classes), the Sinkhorn bracket beyond (measured: colgen is exact in ~15 s at 3.2e6 arcs).
AUTO_COLGEN_ARCS = 4_000_000
#: Default memory ceiling of :func:`multiclass_smooth_ce` (bytes).
DEFAULT_MAX_MEMORY = 4 << 30
#: Sinkhorn iterations per eps stage of the sparse phase (the default of ``sinkhorn_iterations``).
SINKHORN_ITERATIONS = 150
#: Sinkhorn schedule (see (F)): the dense phase's eps (cost units; ``d <= 2``) and iterations, the
#: best opposites per point kept as arcs, the sparse phase's eps factor and final eps, and the
#: relative plan mass above which an arc enters the polishing LP.
_SK_DENSE_EPS = 0.02
_SK_DENSE_ITERS = 40
_SK_ARCS_PER_POINT = 16
_SK_FACTOR = 0.4
_SK_EPS_MIN = 5e-4
_SK_SUPPORT = 1e-8
#: Bytes per source-sink pair the Sinkhorn path holds for its largest class (float64 costs,
#: float32 kernel and reduced costs, one float64 temporary).
_BYTES_PER_SK_PAIR = 28
_METHODS = ("auto", "dp", "colgen", "lp", "sinkhorn")


@dataclass(frozen=True)
class MulticlassSmoothCE:
    """The multi-class smooth calibration error of one predictor (per example, ``[0, 2]``).

    ``lower <= smCE_K <= upper`` always (certified: see :mod:`w2s_utils.theory.smooth_ce`).
    ``exact``: the bracket has closed (``upper - lower <= rtol * max(1, upper)``); ``value`` is
    then its midpoint, else NaN (read ``lower``/``upper``). ``method``: ``"dp"`` (K = 2, exact
    1-D programme), ``"colgen"`` (column generation), ``"lp"`` (one LP over all source-sink
    arcs) or ``"sinkhorn"`` (entropic transport, then column generation if a ``time_limit`` was
    given). ``rounds``: LP rounds summed over classes; ``seconds``: wall time; ``n``, ``k``: the
    sample's size and number of classes.
    """

    value: float
    lower: float
    upper: float
    exact: bool
    method: str
    rounds: int
    seconds: float
    n: int
    k: int

    @property
    def width(self) -> float:
        """``upper - lower`` (0 up to round-off when exact)."""
        return self.upper - self.lower

    def __float__(self) -> float:
        return float(self.value)


@dataclass
class _Class:
    """One class's problem (A): source and sink points, masses, arc set and certified bounds."""

    ps: torch.Tensor
    pt: torch.Tensor
    a: np.ndarray
    b: np.ndarray
    arcs: np.ndarray
    lower: float
    upper: float
    done: bool = False
    rounds: int = 0


def _chunk_rows(n_cols: int) -> int:
    return max(1, _CHUNK_BYTES // (8 * max(1, n_cols)))


def _dist(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """l1 distances ``[len(x), len(y)]`` (float64)."""
    return torch.cdist(x, y, p=1.0)


def _nearest_arcs(ps: torch.Tensor, pt: torch.Tensor, m: int) -> np.ndarray:
    """Each source's ``m`` nearest sinks and each sink's ``m`` nearest sources (l1), once each."""
    out = []
    for src, dst, flip in ((ps, pt, False), (pt, ps, True)):
        kk = min(m, len(dst))
        step = _chunk_rows(len(dst))
        for s in range(0, len(src), step):
            idx = _dist(src[s : s + step], dst).topk(kk, dim=1, largest=False).indices
            rows = torch.arange(s, s + idx.shape[0])[:, None].expand_as(idx)
            pair = (idx, rows) if flip else (rows, idx)
            out.append(torch.stack([pair[0].reshape(-1), pair[1].reshape(-1)], 1))
    return torch.unique(torch.cat(out), dim=0).numpy()


def _arc_lengths(c: _Class, arcs: np.ndarray) -> np.ndarray:
    return (c.ps[arcs[:, 0]] - c.pt[arcs[:, 1]]).abs().sum(1).numpy()


def _restricted_lp(c: _Class) -> tuple[float, np.ndarray, np.ndarray]:
    """Solve (A) on ``c.arcs``; return the certified upper bound (C) and the LP's ``w_S, w_T``."""
    n_s, n_t, m = len(c.a), len(c.b), len(c.arcs)
    d = _arc_lengths(c, c.arcs)
    rows = np.arange(m)
    cols = np.r_[c.arcs[:, 0], n_s + c.arcs[:, 1]]
    a_ub = sparse.csr_matrix(
        (np.r_[np.ones(m), -np.ones(m)], (np.r_[rows, rows], cols)), shape=(m, n_s + n_t)
    )
    res = linprog(
        -np.r_[c.a, -c.b],
        A_ub=a_ub,
        b_ub=d,
        bounds=(-1.0, 1.0),
        # dual simplex on the first (nearest-neighbour) arc set and on small LPs; the interior
        # point method on the later, larger ones (measured 5x faster there, 5x slower on the first)
        method="highs-ds" if m <= 20_000 or c.rounds == 0 else "highs-ipm",
        options={"primal_feasibility_tolerance": 1e-9, "dual_feasibility_tolerance": 1e-9},
    )
    if res.status != 0:
        raise RuntimeError(f"multiclass_smooth_ce: HiGHS failed ({res.message})")
    flow = np.maximum(-res.ineqlin.marginals, 0.0)
    out = np.bincount(c.arcs[:, 0], weights=flow, minlength=n_s)
    inn = np.bincount(c.arcs[:, 1], weights=flow, minlength=n_t)
    upper = float(flow @ d + np.abs(c.a - out).sum() + np.abs(c.b - inn).sum())
    return upper, res.x[:n_s], res.x[n_s:]


def _certify_and_price(
    c: _Class, w_s: np.ndarray, w_t: np.ndarray | None, m: int, ptol: float
) -> tuple[float, np.ndarray]:
    """The fix-up lower bound (B) from ``w_s``; with ``w_t``, the violated arcs (top ``m`` per
    source and per sink with ``w_i - w_j - d_ij > ptol``)."""
    ws = torch.from_numpy(np.clip(w_s, -1.0, 1.0))
    wt = None if w_t is None else torch.from_numpy(w_t)
    n_t = len(c.b)
    step = _chunk_rows(n_t)
    low = torch.full((n_t,), -1.0, dtype=torch.float64)
    found = []
    kk = min(m, n_t)
    col_v = torch.full((n_t, m), -math.inf, dtype=torch.float64)
    col_i = torch.zeros((n_t, m), dtype=torch.long)
    for s in range(0, len(c.a), step):
        d = _dist(c.ps[s : s + step], c.pt)
        low = torch.maximum(low, (ws[s : s + step, None] - d).amax(0))
        if wt is None:
            continue
        v = ws[s : s + step, None] - wt[None, :] - d
        vv, jj = v.topk(kk, dim=1)
        ii = torch.arange(s, s + v.shape[0])[:, None].expand_as(jj)
        keep = vv > ptol
        found.append(torch.stack([ii[keep], jj[keep]], 1))
        cv, ci = v.topk(min(m, v.shape[0]), dim=0)
        both_v = torch.cat([col_v, cv.T], 1)
        both_i = torch.cat([col_i, (ci + s).T], 1)
        top = both_v.topk(m, dim=1)
        col_v, col_i = top.values, both_i.gather(1, top.indices)
    up = torch.empty(len(c.a), dtype=torch.float64)
    for s in range(0, len(c.a), step):
        d = _dist(c.ps[s : s + step], c.pt)
        up[s : s + step] = (low[None, :] + d).amin(1).clamp(max=1.0)
    lower = float((torch.from_numpy(c.a) * up).sum() - (torch.from_numpy(c.b) * low).sum())
    if wt is None:
        return lower, np.zeros((0, 2), dtype=np.int64)
    keep = col_v > ptol
    sinks = torch.arange(n_t)[:, None].expand_as(col_i)
    found.append(torch.stack([col_i[keep], sinks[keep]], 1))
    return lower, torch.unique(torch.cat(found), dim=0).numpy()


def _flow_upper(
    rows: np.ndarray,
    cols: np.ndarray,
    d: np.ndarray,
    flow: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
) -> float:
    """The certified upper bound (C) of a nonnegative flow on the arcs ``(rows, cols)``."""
    flow = np.maximum(flow, 0.0)
    out = np.bincount(rows, weights=flow, minlength=len(a))
    inn = np.bincount(cols, weights=flow, minlength=len(b))
    return float(flow @ d + np.abs(a - out).sum() + np.abs(b - inn).sum())


def _fixup_dense(cost: torch.Tensor, a: np.ndarray, b: np.ndarray, w_s: np.ndarray) -> float:
    """The fix-up lower bound (B) of source values ``w_s`` against the dense ``cost`` (float64)."""
    ws = torch.from_numpy(np.clip(np.nan_to_num(w_s), -1.0, 1.0))
    n_s, n_t = cost.shape
    step = _chunk_rows(n_t)
    low = torch.full((n_t,), -1.0, dtype=torch.float64)
    for s in range(0, n_s, step):
        low = torch.maximum(low, (ws[s : s + step, None] - cost[s : s + step]).amax(0))
    up = torch.empty(n_s, dtype=torch.float64)
    for s in range(0, n_s, step):
        up[s : s + step] = (low[None, :] + cost[s : s + step]).amin(1).clamp(max=1.0)
    return float((torch.from_numpy(a) * up).sum() - (torch.from_numpy(b) * low).sum())


def _sinkhorn_class(c: _Class, iterations: int) -> None:
    """Certified bracket of one class by entropic transport (see (F)); sets ``c.lower``,
    ``c.upper`` and ``c.arcs`` (the plan's support, the start of any column generation)."""
    cost = _dist(c.ps, c.pt)  # float64 [n_s, n_t], kept for the certification
    n_s, n_t = cost.shape
    mass_a, mass_b = float(c.a.sum()), float(c.b.sum())
    # dense phase (float32 heuristics): a coarse plan u_i K_ij v_j of the augmented problem
    eps = _SK_DENSE_EPS
    at, bt = torch.tensor(c.a, dtype=torch.float32), torch.tensor(c.b, dtype=torch.float32)
    kern = cost.float().div_(-eps).exp_()  # K_ij = exp(-d_ij / eps), in place
    e1 = math.exp(-1.0 / eps)  # the dummy arcs (cost 1); dummy-dummy costs 0
    u, v, ud, vd = torch.ones(n_s), torch.ones(n_t), 1.0, 1.0
    for _ in range(_SK_DENSE_ITERS):
        u = at / (kern @ v + e1 * vd).clamp_min(1e-30)
        ud = mass_b / max(e1 * float(v.sum()) + vd, 1e-30)
        v = bt / (kern.T @ u + e1 * ud).clamp_min(1e-30)
        vd = mass_a / max(e1 * float(u.sum()) + ud, 1e-30)
    # candidate arcs: each point's largest plan entries (its best opposites by reduced cost)
    best_t = kern.mul_(v[None, :]).topk(min(_SK_ARCS_PER_POINT, n_t), 1).indices.numpy()
    best_s = kern.mul_(u[:, None]).topk(min(_SK_ARCS_PER_POINT, n_s), 0).indices.numpy()
    del kern
    f, g = eps * u.double().log().numpy(), eps * v.double().log().numpy()
    fd, gd = eps * math.log(ud), eps * math.log(vd)
    key = np.unique(
        np.r_[
            np.repeat(np.arange(n_s), best_t.shape[1]) * n_t + best_t.ravel(),
            best_s.ravel().astype(np.int64) * n_t + np.tile(np.arange(n_t), best_s.shape[0]),
        ]
    )
    rr, cc = key // n_t, key % n_t
    dd = cost[torch.from_numpy(rr), torch.from_numpy(cc)].numpy()
    # sparse phase (float64, log-stabilised kernel form) on arcs + dummy arcs, eps annealed down
    rows = np.r_[rr, np.arange(n_s), np.full(n_t + 1, n_s)]
    cols = np.r_[cc, np.full(n_s, n_t), np.arange(n_t + 1)]
    arc_cost = np.r_[dd, np.ones(n_s + n_t), 0.0]
    kern = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_s + 1, n_t + 1))
    kern.sort_indices()
    order = np.lexsort((cols, rows))
    rows, cols, arc_cost = rows[order], cols[order], arc_cost[order]
    mu, nu = np.r_[c.a, mass_b], np.r_[c.b, mass_a]
    pf, pg = np.r_[f, fd], np.r_[g, gd]
    while eps > _SK_EPS_MIN:
        eps = max(eps * _SK_FACTOR, _SK_EPS_MIN)
        done = 0
        while done < iterations:  # absorb the scalings into the potentials when they grow
            kern.data = np.exp(np.minimum((pf[rows] + pg[cols] - arc_cost) / eps, 700.0))
            u, v = np.ones(n_s + 1), np.ones(n_t + 1)
            while done < iterations:
                done += 1
                u = mu / np.maximum(kern @ v, 1e-300)
                v = nu / np.maximum(kern.T @ u, 1e-300)
                if max(np.abs(np.log(u)).max(), np.abs(np.log(v)).max()) > 30.0:
                    break
            pf, pg = pf + eps * np.log(u), pg + eps * np.log(v)
    plan = np.exp(np.minimum((pf[rows] + pg[cols] - arc_cost) / eps, 700.0))
    real = (rows < n_s) & (cols < n_t)
    rr, cc, dd, plan = rows[real], cols[real], arc_cost[real], plan[real]
    # round the plan into the marginals (rows, then columns): a nonnegative flow, bound (C)
    out = np.bincount(rr, weights=plan, minlength=n_s)
    plan = plan * np.minimum(1.0, c.a / np.maximum(out, 1e-300))[rr]
    inn = np.bincount(cc, weights=plan, minlength=n_t)
    plan = plan * np.minimum(1.0, c.b / np.maximum(inn, 1e-300))[cc]
    c.upper = min(c.upper, _flow_upper(rr, cc, dd, plan, c.a, c.b))
    # source values w_i = f_i + g_t0 (f_i + g_j <= d_ij and f_i + g_t0 <= 1 at the optimum)
    c.lower = max(c.lower, _fixup_dense(cost, c.a, c.b, pf[:n_s] + pg[n_t]))
    # polish: the exact transport on the plan's support (HiGHS), bounds (C) and (B) again
    keep = np.flatnonzero(plan > _SK_SUPPORT * max(plan.max(initial=0.0), 1e-300))
    if len(keep):
        m = len(keep)
        a_ub = sparse.csr_matrix(
            (np.ones(2 * m), (np.r_[rr[keep], n_s + cc[keep]], np.r_[np.arange(m), np.arange(m)])),
            shape=(n_s + n_t, m),
        )
        res = linprog(
            dd[keep] - 2.0, A_ub=a_ub, b_ub=np.r_[c.a, c.b], bounds=(0.0, None), method="highs-ds"
        )
        if res.status == 0:
            c.upper = min(c.upper, _flow_upper(rr[keep], cc[keep], dd[keep], res.x, c.a, c.b))
            w_s = 1.0 + res.ineqlin.marginals[:n_s]  # w_i = 1 - y_i, y >= 0 the row duals
            c.lower = max(c.lower, _fixup_dense(cost, c.a, c.b, w_s))
        c.arcs = np.stack([rr[keep], cc[keep]], 1).astype(np.int64)
    c.rounds += 1


def _memory_estimate(n: int, k: int, method: str, pairs: int, class_pairs: int) -> int:
    """Bytes the computation may hold at once (before anything large is allocated);
    ``class_pairs``: the largest class's source-sink pairs."""
    base = 8 * n * k * 8 + 3 * _CHUNK_BYTES
    if method == "lp":
        return base + pairs * (_BYTES_PER_LP_ARC + _BYTES_PER_ARC)
    cap = ARC_CAP_PER_POINT * n
    colgen = base + k * cap * _BYTES_PER_ARC + cap * _BYTES_PER_LP_ARC
    if method == "sinkhorn":
        return colgen + class_pairs * _BYTES_PER_SK_PAIR
    return colgen


def multiclass_smooth_ce(
    probs: Any,
    *,
    labels: Any = None,
    f_star: Any = None,
    method: str = "auto",
    time_limit: float | None = None,
    max_rounds: int | None = None,
    rtol: float = 1e-8,
    max_memory: int = DEFAULT_MAX_MEMORY,
    neighbours: int = 4,
    sinkhorn_iterations: int = SINKHORN_ITERATIONS,
) -> MulticlassSmoothCE:
    """Empirical multi-class smooth calibration error ``smCE_K`` of ``probs`` ``[N, K]``: exact,
    or a certified bracket (see the module docstring for the definition and the proofs).

    Against ``labels`` (class indices) or ``f_star`` (true class probabilities, same shape).
    ``method``: ``"auto"`` (``"dp"`` for ``K = 2``; ``"lp"`` up to ``AUTO_LP_ARCS`` source-sink
    arcs, ``"colgen"`` up to ``AUTO_COLGEN_ARCS``, ``"sinkhorn"`` beyond when ``time_limit`` is
    ``None``, else ``"colgen"`` within the limit), ``"dp"`` (``K = 2`` only), ``"sinkhorn"`` (the
    certified bracket of entropic transport, (F): 5-8 s per class at ``N = 10^4`` on a loaded
    2-core box, width ~0.1-2%; with ``time_limit``, column generation from its support until
    then; ``max_rounds`` counts the Sinkhorn pass as one round), ``"colgen"`` (column generation,
    bounded memory), ``"lp"`` (one LP per class over all source-sink arcs: exact, memory ~
    ``N^2 / K`` arcs per class; a cross-check for small ``N``).
    ``time_limit`` (seconds, ``colgen``): no new LP round starts after it; the classes are
    refined in turn, so the bracket tightens evenly; ``None`` runs to exactness.
    ``max_rounds`` (``colgen``): at most this many LP rounds per class (a deterministic budget;
    ``0`` returns the trivial bracket ``[|sum r|, sum |r|]`` per class). ``rtol``: the
    bracket counts as closed (``exact``) when ``upper - lower <= rtol * max(1, upper)``.
    ``neighbours``: the nearest opposites per point in the first arc set, and the violated arcs
    added per point and round. ``sinkhorn_iterations``: iterations per ``eps`` stage of the
    sparse Sinkhorn phase (fewer: faster, wider, still certified).

    Raises ``ValueError`` *before* allocating anything large when the estimated memory (from
    ``N``, ``K`` and the method) exceeds ``max_memory`` bytes, saying what to do: subsample the
    rows, or use ``colgen`` with a ``time_limit`` (bounded memory, certified bracket).

    Returns :class:`MulticlassSmoothCE`. ``N = 1``-style edge cases: a class with no positive
    (or no negative) residual has ``V = sum |r|`` exactly (a constant witness and a zero flow).
    For ``K = 2`` the value lies between 2 and 4 times the binary
    :func:`w2s_utils.metrics.smooth_ce` (``w_1 - w_2`` is bounded by 2 and 4-Lipschitz in ``p_1``).
    """
    t0 = time.perf_counter()
    if method not in _METHODS:
        raise ValueError(f"method: must be one of {_METHODS}, got {method!r}")
    if time_limit is not None:
        time_limit = check_number(time_limit, "time_limit", lo=0.0)
    rtol = check_number(rtol, "rtol", lo=0.0)
    max_memory = check_int(max_memory, "max_memory", minimum=1)
    neighbours = check_int(neighbours, "neighbours", minimum=1)
    sinkhorn_iterations = check_int(sinkhorn_iterations, "sinkhorn_iterations", minimum=1)
    if max_rounds is not None:
        max_rounds = check_int(max_rounds, "max_rounds", minimum=0)
    rounds_cap = math.inf if max_rounds is None or method == "lp" else max_rounds
    p = _probs(probs, "probs")
    target, _ = _target(p.shape[1], p, f_star, labels)
    n, k = p.shape
    resid = (target - p).cpu()
    if method == "dp" or (method == "auto" and k == 2):
        if k != 2:
            raise ValueError(f"method: 'dp' is for K = 2 classes, got K = {k}; use 'colgen'")
        s = p[:, 1].cpu()
        v = 2.0 * metrics.lipschitz_sup_1d(2.0 * s, resid[:, 1], validate=False) / n
        return MulticlassSmoothCE(v, v, v, True, "dp", 0, time.perf_counter() - t0, n, k)
    pos = resid > 0
    neg = resid < 0
    n_pos, n_neg = pos.sum(0).double(), neg.sum(0).double()
    pairs = int((n_pos * n_neg).sum())
    class_pairs = int((n_pos * n_neg).max())
    if method == "auto":  # one LP over all arcs is fastest while they are few (measured)
        method = "lp" if pairs <= AUTO_LP_ARCS else "colgen"
        # beyond AUTO_COLGEN_ARCS the Sinkhorn bracket, unless the caller set a time budget
        # (e.g. `check`'s few seconds, which the Sinkhorn pass alone can exceed there)
        if pairs > AUTO_COLGEN_ARCS and time_limit is None:
            method = "sinkhorn"
    need = _memory_estimate(n, k, method, pairs, class_pairs)
    if need > max_memory:
        raise ValueError(
            f"probs: smCE_K with method={method!r} on N = {n}, K = {k} needs about "
            f"{need / 2**30:.1f} GiB, over max_memory = {max_memory / 2**30:.1f} GiB; subsample "
            "the rows (e.g. a random 20,000), "
            + (
                "or use method='colgen' (bounded memory; pass time_limit for a certified bracket)"
                if method == "lp"
                else "or raise max_memory if the machine has it"
            )
        )
    pts = p.cpu()
    classes: list[_Class] = []
    for j in range(k):
        r = resid[:, j].numpy()
        si, ti = np.flatnonzero(r > 0), np.flatnonzero(r < 0)
        a, b = r[si], -r[ti]
        # trivial certified bounds: a constant witness w = ±1, and the empty flow
        c = _Class(
            pts[si],
            pts[ti],
            a,
            b,
            np.zeros((0, 2), np.int64),
            float(abs(a.sum() - b.sum())),
            float(a.sum() + b.sum()),
        )
        if len(si) == 0 or len(ti) == 0:
            c.done = True
        elif method == "lp":
            ii, jj = np.meshgrid(np.arange(len(si)), np.arange(len(ti)), indexing="ij")
            c.arcs = np.stack([ii.ravel(), jj.ravel()], 1)
        elif method == "sinkhorn":
            _sinkhorn_class(c, sinkhorn_iterations)
            c.done = c.upper - c.lower <= rtol * max(1.0, c.upper)
        else:
            c.arcs = _nearest_arcs(c.ps, c.pt, neighbours)
        classes.append(c)
    deadline = math.inf if time_limit is None or method == "lp" else t0 + time_limit
    if method == "sinkhorn" and time_limit is None:
        deadline = -math.inf  # the Sinkhorn bracket alone; column generation only when asked
    cap = ARC_CAP_PER_POINT * n
    while True:
        todo = [c for c in classes if not c.done and c.rounds < rounds_cap]
        if not todo or time.perf_counter() >= deadline:
            break
        for c in todo:
            if time.perf_counter() >= deadline:
                break
            upper, w_s, w_t = _restricted_lp(c)
            c.rounds += 1
            lower, new = _certify_and_price(
                c, w_s, None if method == "lp" else w_t, neighbours, 1e-7
            )
            c.upper, c.lower = min(c.upper, upper), max(c.lower, lower)
            grown = np.unique(np.concatenate([c.arcs, new]), axis=0) if len(new) else c.arcs
            if method == "lp" or len(grown) == len(c.arcs) or len(grown) > cap:
                c.done = True
            c.arcs = grown
    lower = float(sum(c.lower for c in classes)) / n
    upper = max(float(sum(c.upper for c in classes)) / n, lower)
    exact = bool(upper - lower <= rtol * max(1.0, upper))
    return MulticlassSmoothCE(
        value=0.5 * (lower + upper) if exact else math.nan,
        lower=lower,
        upper=upper,
        exact=exact,
        method=method,
        rounds=sum(c.rounds for c in classes),
        seconds=time.perf_counter() - t0,
        n=n,
        k=k,
    )
