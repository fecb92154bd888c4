"""Several training runs of one architecture trained together: one stacked step for M models.

:func:`train_stacked` trains M copies of a torch classifier (the seeds and teachers of one grid:
same model, same settings apart from the seed, same number of training examples) as one program:
their trainable parameters are stacked along a new leading axis
(:func:`torch.func.stack_module_state`), one forward computes all M models' logits on their own
mini-batches with :func:`torch.func.vmap` over :func:`torch.func.functional_call`, one backward
and one fused AdamW step update all of them. On a GPU this turns M small, launch-bound steps into
one step with M times the work per kernel.

It is the same algorithm as the reference loop :func:`w2s_utils.engine.train.train_classifier`,
run by run: the same seeded initialisation, the same per-seed data order, the same warm-up +
cosine schedule, AdamW with weight decay on matrices only, gradient clipping per run (each run's
own norm), the same loss, the same evaluations (history columns), early stopping per run (a run
that stops is frozen and restored to its best evaluation). Two things differ: each run's batch is
padded to the longest text among the M runs' batches (padding is masked, so only the rounding of
the matrix products changes), and dropout draws its masks from one random stream for all runs
(``vmap(randomness="different")``: independent masks per run, but not the masks a separate run
would draw). With dropout off the predictions match separate runs to float32 rounding
(``tests/robustness/test_scale.py`` states the tolerance); with dropout on, a batched run is
another draw of the same random procedure, which is why results of batched training are never
stored under the reference loop's cache keys.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap
from torch.nn.attention import SDPBackend, sdpa_kernel

from w2s_utils.engine.losses import make_loss
from w2s_utils.engine.models import FastDropout
from w2s_utils.engine.train import (
    EarlyStopping,
    TrainSettings,
    as_target_probs,
    autocast,
    finish_history,
    history_row,
    make_optimizer,
    seed_everything,
    warmup_cosine,
)

__all__ = ["train_stacked", "stack_batches"]


class _Forward(nn.Module):
    """``forward(batch) = model.forward_batch(batch)`` with the trainable module registered."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.top = model.trainable_module()
        self._model = [model]  # not a submodule

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self._model[0].forward_batch(batch)


def stack_batches(batches: list[dict[str, torch.Tensor]], pad_ids: Sequence[int]) -> dict:
    """Stack M collated batches into ``[M, B, ...]`` tensors, padding dim 1 to the longest.

    ``input_ids`` are padded with the model's pad id, everything else (masks, cached states)
    with zeros; tensors of rank 2 without a length axis (pooled features) must agree in shape.
    """
    out: dict[str, torch.Tensor] = {}
    for key in batches[0]:
        ts = [b[key] for b in batches]
        if key in ("input_ids", "attention_mask", "hidden"):
            t = max(x.shape[1] for x in ts)
            padded = []
            for x, pad in zip(ts, pad_ids, strict=True):
                fill = pad if key == "input_ids" else 0
                extra = list(x.shape)
                extra[1] = t - x.shape[1]
                padded.append(torch.cat([x, x.new_full(extra, fill)], dim=1))
            ts = padded
        out[key] = torch.stack(ts, dim=0)
    return out


def _check_group(models: Sequence[Any], settings: Sequence[TrainSettings], n: Sequence[int]):
    if not models:
        raise ValueError("train_stacked: no models")
    if not (len(models) == len(settings) == len(n)):
        raise ValueError("train_stacked: models, texts, targets and settings differ in length")
    kinds = {(type(m).__name__, getattr(m, "name", ""), getattr(m, "mode", "")) for m in models}
    if len(kinds) != 1:
        raise ValueError(f"train_stacked: the models must share one architecture, got {kinds}")
    if len({replace(s, seed=0, progress=False) for s in settings}) != 1:
        raise ValueError("train_stacked: settings may differ only in seed (and progress)")
    if len(set(n)) != 1:
        raise ValueError(f"train_stacked: every run needs the same number of examples, got {n}")
    if n[0] == 0:
        raise ValueError("train_stacked: texts are empty; need at least one training example")
    shapes = [[tuple(p.shape) for p in m.trainable_parameters()] for m in models]
    if any(s != shapes[0] for s in shapes):
        raise ValueError("train_stacked: the models' trainable parameters differ in shape")


def _per_run(x: Any, m: int, name: str) -> list[Any]:
    if x is None:
        return [None] * m
    if isinstance(x, list) and len(x) == m:
        return x
    raise ValueError(f"train_stacked: {name} must be a list with one entry per model (or None)")


def train_stacked(
    models: Sequence[Any],
    texts: Sequence[Sequence[str]],
    targets: Sequence[Any],
    settings: Sequence[TrainSettings],
    *,
    val: list[tuple[Sequence[str], Any] | None] | None = None,
    test: list[tuple[Sequence[str], Any] | None] | None = None,
) -> list[pd.DataFrame]:
    """Train ``models[m]`` on ``texts[m]``/``targets[m]`` with ``settings[m]``, all together.

    Arguments are per run, as :func:`~w2s_utils.engine.train.train_classifier` takes them one run
    at a time; ``val``/``test`` are lists of ``(texts, labels)`` (or ``None``). The models must
    be fresh torch classifiers of one architecture (same class, name and mode); settings may
    differ only in ``seed``; every run has the same number of training examples (the runs of one
    grid cell do). Each model ends with its trained weights (its best evaluation under early
    stopping), as after ``model.fit``; the histories are returned in order.
    """
    models = list(models)
    m_runs = len(models)
    n_list = [len(t) for t in texts]
    _check_group(models, list(settings), n_list)
    if len(targets) != m_runs:
        raise ValueError("train_stacked: models, texts, targets and settings differ in length")
    vals, tests = _per_run(val, m_runs, "val"), _per_run(test, m_runs, "test")
    s = settings[0]
    k = models[0].n_classes
    device = models[0].device
    n = n_list[0]

    runs = []
    for model, tx, tg, st, v, te in zip(models, texts, targets, settings, vals, tests, strict=True):
        y = as_target_probs(tg, k)
        if len(y) != len(tx):
            raise ValueError(f"train_stacked: {len(tx)} texts but {len(y)} targets")
        model.max_length = st.max_length
        seed_everything(st.seed)
        model.reset_parameters(st.seed)
        run: dict[str, Any] = {"y": y, "items": model.prepare(tx), "rows": [], "seed": st.seed}
        run["val"] = (model.prepare(v[0]), as_target_probs(v[1], k, "val labels")) if v else None
        run["test"] = (model.prepare(te[0]), np.asarray(te[1]).astype(np.int64)) if te else None
        rng = np.random.default_rng(st.seed)
        run["eps_idx"] = rng.permutation(n)[: st.train_eps_max] if st.train_eps_max else None
        run["gen"] = torch.Generator().manual_seed(st.seed)
        run.update(stopper=EarlyStopping(st.patience), active=True, final=None)
        runs.append(run)

    steps_per_epoch = math.ceil(n / s.batch_size)
    total = max(1, math.ceil(s.epochs * steps_per_epoch))
    warmup = int(round(s.warmup_frac * total))
    loss_fns = [make_loss(s.loss, total_steps=total) for _ in range(m_runs)]
    tops = [mdl.trainable_module() for mdl in models]
    names = [name for name, p in tops[0].named_parameters() if p.requires_grad]
    params, buffers = stack_module_state(tops)
    params = {name: params[name].detach().requires_grad_(True) for name in names}
    frozen = {name: p.detach() for name, p in tops[0].named_parameters() if name not in params}
    opt = make_optimizer(list(params.values()), s.lr, s.weight_decay, stacked=True)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: warmup_cosine(i, total, warmup))
    y_ts = [torch.as_tensor(r["y"]) for r in runs]
    template = _Forward(models[0])

    def one(p: dict, b: dict, batch: dict) -> torch.Tensor:
        state = {f"top.{k_}": v for k_, v in {**p, **frozen}.items()}
        state.update({f"top.{k_}": v for k_, v in b.items()})
        return functional_call(template, state, (batch,))

    def sync(m: int) -> None:
        """Copy run ``m``'s slice of the stacked parameters into its own model."""
        with torch.no_grad():
            own = dict(tops[m].named_parameters())
            for name, p in params.items():
                own[name].copy_(p[m])

    def evaluate(m: int, step: int, train_loss: float) -> bool:
        r, mdl = runs[m], models[m]
        sync(m)
        base = {
            "step": step,
            "epoch": step / steps_per_epoch,
            "lr": opt.param_groups[0]["lr"],
            "train_loss": train_loss,
        }

        def on(pair: tuple[list[Any], Any] | None) -> tuple[Any, np.ndarray] | None:
            """(items, targets) -> (targets, the model's probabilities on the items)."""
            if pair is None:
                return None
            return pair[1], mdl.predict_items(pair[0], s.eval_batch_size)

        eps = r["eps_idx"]
        train = None if eps is None else ([r["items"][i] for i in eps], r["y"][eps])
        row = history_row(base, train=on(train), val=on(r["val"]), test=on(r["test"]))
        r["rows"].append(row)
        if not s.early_stopping or r["val"] is None:
            return False
        return r["stopper"].update(row["val_loss"], mdl.trainable_state)

    def _loop() -> list[pd.DataFrame]:
        running = np.zeros(m_runs)
        running_n = 0
        step = 0
        pad_ids = [getattr(mdl, "pad_id", 0) or 0 for mdl in models]
        while step < total and any(r["active"] for r in runs):
            orders = [torch.randperm(n, generator=r["gen"]).tolist() for r in runs]
            for start in range(0, n, s.batch_size):
                idx = [o[start : start + s.batch_size] for o in orders]
                models[0].train_mode(True)
                batch = stack_batches(
                    [
                        mdl.collate([r["items"][i] for i in ix])
                        for mdl, r, ix in zip(models, runs, idx, strict=True)
                    ],
                    pad_ids,
                )
                with autocast(device, s.bf16):
                    logits = stacked_forward(params, buffers, batch)
                losses = torch.stack(
                    [
                        loss_fns[m](logits[m].float(), y_ts[m][idx[m]].to(logits.device), step)
                        for m in range(m_runs)
                    ]
                )
                opt.zero_grad(set_to_none=True)
                losses.sum().backward()
                if s.max_grad_norm > 0:
                    _clip_per_run(list(params.values()), s.max_grad_norm)
                opt.step()
                sched.step()
                running += losses.detach().cpu().numpy().astype(np.float64) * len(idx[0])
                running_n += len(idx[0])
                step += 1
                end_of_epoch = start + s.batch_size >= n
                if (
                    (s.eval_every and step % s.eval_every == 0)
                    or (not s.eval_every and end_of_epoch)
                    or step == total
                ):
                    for m, r in enumerate(runs):
                        if r["active"] and (not r["rows"] or r["rows"][-1]["step"] != step):
                            if evaluate(m, step, running[m] / running_n if running_n else math.nan):
                                r["active"] = False
                                r["final"] = {
                                    k_: v.detach().clone()
                                    for k_, v in models[m].trainable_state().items()
                                }
                    running[:] = 0.0
                    running_n = 0
                if step >= total or not any(r["active"] for r in runs):
                    break
        histories = []
        for m, (mdl, r) in enumerate(zip(models, runs, strict=True)):
            sync(m)
            if r["final"] is not None:
                mdl.load_trainable_state(r["final"])
            mdl.train_mode(False)
            best = r["stopper"].best_state
            if s.early_stopping and best is not None:
                mdl.load_trainable_state(best)
            histories.append(finish_history(r["rows"], s))
        return histories

    stacked_forward = vmap(one, in_dims=(0, 0, 0), randomness="different")
    swapped = _plain_dropout(models[0].trainable_module())
    try:
        with _materialized_masks(), _eager_attention(models[0]):
            histories = _loop()
    finally:
        for parent, name, module in swapped:
            setattr(parent, name, module)
    return histories


@torch.no_grad()
def _clip_per_run(params: list[torch.Tensor], max_norm: float) -> None:
    """``clip_grad_norm_`` applied to each run's slice of the stacked parameters on its own."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    norms = torch.stack([g.flatten(1).float().pow(2).sum(1) for g in grads]).sum(0).sqrt()
    coef = torch.clamp(max_norm / (norms + 1e-6), max=1.0)
    for g in grads:
        g.mul_(coef.view(-1, *([1] * (g.dim() - 1))).to(g.dtype))


def _plain_dropout(module: nn.Module) -> list[tuple[nn.Module, str, nn.Module]]:
    """Swap :class:`~w2s_utils.engine.models.FastDropout` (not vmappable) for ``nn.Dropout``.

    Returns (parent, name, original) triples to put back. ``p`` is kept, so attention dropout,
    which reads ``module.p``, is unchanged.
    """

    swapped = []
    for parent in module.modules():
        for name, child in list(parent.named_children()):
            if isinstance(child, FastDropout):
                setattr(parent, name, nn.Dropout(child.p))
                swapped.append((parent, name, child))
    return swapped


@contextlib.contextmanager
def _materialized_masks():
    """Make transformers always build the attention mask (no data-dependent skip) under vmap.

    transformers skips building the mask when a batch has no padding, which it learns from
    ``padding_mask.all()``: data-dependent control flow that vmap cannot trace. Building it
    always gives the same attention (the skip is only an optimisation).
    """
    try:
        from transformers import masking_utils
    except ImportError:  # pragma: no cover - transformers is a dependency
        yield
        return
    names = ("_ignore_bidirectional_mask_sdpa", "_ignore_causal_mask_sdpa")
    saved = {n: getattr(masking_utils, n) for n in names if hasattr(masking_utils, n)}
    try:
        for n in saved:
            setattr(masking_utils, n, lambda *a, **k: False)
        yield
    finally:
        for n, fn in saved.items():
            setattr(masking_utils, n, fn)


@contextlib.contextmanager
def _eager_attention(model: Any):
    """Hugging Face attention as plain matrix products while the stacked step runs.

    vmap has no batching rule for the fused scaled-dot-product attention kernels on every
    backend (on CPU it falls back to a loop over the runs, with a warning), while the eager
    path is batched matmuls and a softmax. The CPU models are eager already. Models that call
    :func:`torch.nn.functional.scaled_dot_product_attention` themselves (``tiny-transformer``'s
    ``nn.MultiheadAttention``) get its math backend, the same matmuls and softmax.
    """
    backbone = getattr(model, "backbone", None)
    cfg = getattr(backbone, "config", None)
    old = getattr(cfg, "_attn_implementation", None)
    swap = not (
        backbone is None
        or old in (None, "eager")
        or not hasattr(backbone, "set_attn_implementation")
    )
    if swap:
        backbone.set_attn_implementation("eager")
    try:
        with sdpa_kernel([SDPBackend.MATH]):
            yield
    finally:
        if swap:
            backbone.set_attn_implementation(old)
