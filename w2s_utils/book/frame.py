"""The chapter frame: what a student and a lecturer need before the first section.

Every chapter opens with a frame (prerequisites, what you will learn, the main result in one
sentence with its glued headline number, time to read, time to run). Its text is a MyST block
that the chapter pastes and fills (:data:`FRAME_TEMPLATE`); its two times are glued by
:func:`glue_frame`, called in the chapter's last code cell:

- ``frame_read_min``: minutes to read, from the notebook's own words (:func:`reading_minutes`);
- ``frame_build_s``: seconds this build spent executing the chapter;
- ``frame_cold_text``: the time the chapter takes on an empty cache, as words ("about 7 minutes"):
  this build's seconds plus the *stored* training seconds of every piece this build read from the
  cache, so a warm build (which trains nothing) still shows the chapter's cold cost;
- ``frame_run_text``: one sentence with both, for the frame's "Time" line.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from w2s_utils._validate import check_int, check_number
from w2s_utils.book.glue import glue_all

__all__ = [
    "FRAME_KEYS",
    "FRAME_TEMPLATE",
    "cold_seconds",
    "frame_values",
    "glue_frame",
    "minutes_text",
    "reading_minutes",
    "word_count",
]

#: Reading speed for mathematical prose (words per minute) and the extra time per display
#: equation; a chapter's reading time is rounded up to whole minutes, then to 5.
WORDS_PER_MINUTE = 150
SECONDS_PER_EQUATION = 20.0

#: The keys :func:`glue_frame` glues (the frame's text uses them).
FRAME_KEYS = ("frame_read_min", "frame_build_s", "frame_cold_text", "frame_run_text")

#: The frame every chapter pastes under its title and fills in (``...``). The headline key is the
#: chapter's own glued number; the time line uses the keys of :func:`glue_frame`.
FRAME_TEMPLATE = """\
:::{admonition} This chapter at a glance
:class: chapter-frame tip

Prerequisites
: ... (chapters, results, background: e.g. "Chapter 1; the KL divergence")

What you will learn
: - ...
  - ...

Main result
: ... one sentence, with its number glued: {glue:text}`HEADLINE_KEY:+.3f` ...

Time
: {glue:md}`frame_run_text`

Run it yourself
: download this notebook (the download button at the top of the page) and the library
  `w2s_utils`: {ref}`running-a-chapter`.
:::
"""

#: A fenced code block (not a directive: those open with ``{name}`` and hold prose).
_CODE_FENCE = re.compile(r"^(?P<f>```|~~~)(?!\{)[^\n]*\n.*?^(?P=f)\s*$", re.S | re.M)
_DISPLAY_MATH = re.compile(r"\$\$.+?\$\$|\\begin\{(equation|align|gather|multline)\*?\}", re.S)
_ROLE = re.compile(r"\{[a-z:-]+\}`[^`]*`")
_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*")


def _markdown_cells(notebook: str | Path) -> list[str]:
    path = Path(notebook)
    if path.suffix != ".ipynb" or not path.is_file():
        raise ValueError(f"notebook: {path} is not a notebook file (.ipynb) that exists")
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"notebook: {path} cannot be read as a notebook ({err})") from None
    cells = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            source = cell.get("source", "")
            cells.append("".join(source) if isinstance(source, list) else str(source))
    return cells


def word_count(text: str) -> tuple[int, int]:
    """``(words, display equations)`` of MyST text: words of the prose (roles such as
    ``{glue:text}`...``` count as one word; maths, directive options and code count as none)."""
    prose = _CODE_FENCE.sub(" ", text)
    equations = len(_DISPLAY_MATH.findall(prose))
    prose = _DISPLAY_MATH.sub(" ", prose)
    prose = re.sub(r"\$[^$\n]+\$", " x ", prose)  # inline maths reads as about one word
    prose = _ROLE.sub(" x ", prose)
    prose = re.sub(r"^:[a-z-]+:.*$", " ", prose, flags=re.M)  # directive options
    # a directive's fence keeps its title ("```{dropdown} Solution"); bare fences go
    prose = re.sub(r"^\s*(?:```|:::|~~~)\{[^}]*\}(.*)$", r" \1 ", prose, flags=re.M)
    prose = re.sub(r"^\s*(```|:::|~~~)\S*.*$", " ", prose, flags=re.M)
    return len(_WORD.findall(prose)), equations


def reading_minutes(notebook: str | Path, words_per_minute: int = WORDS_PER_MINUTE) -> int:
    """Minutes to read ``notebook``'s text (Markdown cells, solutions included) at
    ``words_per_minute`` plus :data:`SECONDS_PER_EQUATION` per display equation, rounded up to a
    multiple of 5 (at least 5)."""
    wpm = check_int(words_per_minute, "words_per_minute", minimum=1)
    words, equations = 0, 0
    for cell in _markdown_cells(notebook):
        w, e = word_count(cell)
        words += w
        equations += e
    minutes = words / wpm + equations * SECONDS_PER_EQUATION / 60.0
    return max(5, 5 * math.ceil(minutes / 5))


def cold_seconds(build_seconds: float, cached_pieces: Iterable[tuple[str, float]] = ()) -> float:
    """Seconds the chapter takes on an empty cache: ``build_seconds`` (this build) plus the stored
    training seconds of each piece this build read from the cache, every piece counted once.

    ``cached_pieces`` yields ``(key, seconds)``: the cache key of a trained piece (a teacher, a
    ceiling, a student) and the wall seconds its training took when it was computed. A piece
    shared by several runs (a ceiling serves every teacher) appears with one key and is counted
    once; the same key with two different times is an error.
    """
    total = check_number(build_seconds, "build_seconds", lo=0.0)
    seen: dict[str, float] = {}
    for item in cached_pieces:
        try:
            key, seconds = item
        except (TypeError, ValueError):
            raise ValueError(
                f"cached_pieces: expected (key, seconds) pairs, got {item!r}"
            ) from None
        s = check_number(seconds, f"cached_pieces[{key!r}]", lo=0.0)
        if key in seen and not math.isclose(seen[key], s, rel_tol=1e-9, abs_tol=1e-9):
            raise ValueError(
                f"cached_pieces: {key!r} appears with {seen[key]} s and {s} s; one piece has one "
                "training time"
            )
        seen[key] = s
    return total + sum(seen.values())


def minutes_text(seconds: float) -> str:
    """A duration in words: "under a minute", "about 1 minute", "about 7 minutes"."""
    s = check_number(seconds, "seconds", lo=0.0)
    if s < 60:
        return "under a minute"
    minutes = round(s / 60)
    return f"about {minutes} minute{'s' if minutes != 1 else ''}"


def frame_values(
    notebook: str | Path,
    build_seconds: float,
    cached_pieces: Iterable[tuple[str, float]] = (),
    *,
    words_per_minute: int = WORDS_PER_MINUTE,
) -> dict[str, Any]:
    """The frame's glue values (:data:`FRAME_KEYS`) without gluing them (see :func:`glue_frame`)."""
    build = check_number(build_seconds, "build_seconds", lo=0.0)
    read = reading_minutes(notebook, words_per_minute)
    cold = cold_seconds(build, cached_pieces)
    cold_text = minutes_text(cold)
    build_text = f"{build:.0f} s" if build >= 1 else "under a second"
    cached_note = (
        "most of it read from the cache" if cold > 2 * build and cold - build >= 60 else ""
    )
    run = (
        f"about {read} minutes to read; to run, "
        f"{cold_text} on an empty cache (on the machine that built this page), {build_text} in "
        f"this build" + (f" ({cached_note})" if cached_note else "") + "."
    )
    return {
        "frame_read_min": read,
        "frame_build_s": round(build, 1),
        "frame_cold_text": cold_text,
        "frame_run_text": run,
    }


def glue_frame(
    notebook: str | Path,
    started: float,
    cached_pieces: Iterable[tuple[str, float]] = (),
    *,
    words_per_minute: int = WORDS_PER_MINUTE,
) -> dict[str, Any]:
    """Glue the frame's times (:data:`FRAME_KEYS`); call it in the chapter's last code cell.

    ``notebook`` is the chapter's own file (the kernel runs in ``notebooks/``:
    ``"01_pipeline.ipynb"``); ``started`` the ``time.perf_counter()`` of its first code cell;
    ``cached_pieces`` the ``(cache key, stored training seconds)`` of the pieces read from the
    cache (see :func:`cold_seconds`). Returns the glued values.
    """
    t0 = check_number(started, "started")
    build = time.perf_counter() - t0
    if build < 0:
        raise ValueError("started: is in the future; pass time.perf_counter() of the first cell")
    values = frame_values(notebook, build, cached_pieces, words_per_minute=words_per_minute)
    glue_all(values)
    return values
