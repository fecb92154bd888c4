"""Chapter 6: constants and helpers shared by the chapter's modules."""

from __future__ import annotations

GREEN, ORANGE, PURPLE, _PINK = "#1b9e77", "#d95f02", "#7570b3", "#e7298a"
