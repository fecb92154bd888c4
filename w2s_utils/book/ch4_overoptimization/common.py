"""Chapter 4: constants and helpers shared by the chapter's modules."""

from __future__ import annotations

import re

TEACHER_COLORS = ("#d95f02", "#1b9e77", "#7570b3", "#e7298a", "#66a61e")
WIDTH = 7.2  # inches: the text column


def slug(text: str) -> str:
    """A glue-key part: lower-case ASCII letters and digits, runs of anything else as one ``_``."""
    return re.sub(r"[^a-z0-9]+", "_", str(text).lower()).strip("_")
