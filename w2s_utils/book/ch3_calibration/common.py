"""Chapter 3: constants and helpers shared by the chapter's modules."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from matplotlib.figure import Figure

from w2s_utils.book.results import verdict

MODEL_NAMES = {"bow": "bag of words", "minilm-l1": "MiniLM-L1", "tiny-transformer": "tiny"}


# ============================================================================ small helpers
def verdict_words(lo: float, hi: float, above: str, below: str, neither: str) -> str:
    """:func:`w2s_utils.book.results.verdict` of the interval ``[lo, hi]`` against zero in the
    chapter's words: ``above`` when it lies above, ``below`` when below, ``neither`` when it
    contains zero or cannot be decided."""
    v = verdict(lo, hi, above=above, below=below)
    return neither if v.startswith(("not", "undet")) else v


def legend_below(fig: Figure, axes: Sequence[Any], ncol: int) -> None:
    """One legend under the panels (none inside them), so that no legend covers data."""
    handles, labels = [], []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab.startswith("weak"):  # the role's colour, the reader's word
                lab = "teacher" + lab[len("weak") :]
            if lab not in labels and not lab.startswith("_"):
                handles.append(h)
                labels.append(lab)
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    fig.legend(
        handles, labels, loc="lower center", ncol=ncol, frameon=False, bbox_to_anchor=(0.5, -0.01)
    )
