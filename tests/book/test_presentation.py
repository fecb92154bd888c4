"""The presentation helpers of the book: tables, glue, the chapter frame, the numbers page.

Truths, not shapes: a printed number parses back to the value within half a unit of its last
digit and carries a sign exactly when that parsed value is not zero; glue receives plain Python
values; reading times follow from counted words; cold times count each cached piece once.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import matplotlib
import nbformat
import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from IPython.display import Markdown

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from w2s_utils.book import frame, glue, numbers, tables  # noqa: E402
from w2s_utils.book.tables import MINUS, format_interval, format_number, present_table  # noqa: E402
from w2s_utils.engine.presets import get_preset  # noqa: E402


def _parse(text: str) -> float:
    return float(text.replace(MINUS, "-").replace(",", "").rstrip("%"))


# ------------------------------------------------------------------------------------- numbers


@given(
    x=st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    digits=st.integers(0, 6),
    signed=st.booleans(),
)
def test_format_number_rounds_then_signs(x: float, digits: int, signed: bool) -> None:
    text = format_number(x, f"{'+' if signed else ''}.{digits}f")
    value = _parse(text)
    assert abs(value - x) <= 0.5 * 10.0**-digits * (1 + 1e-9) + 1e-9 * abs(x)
    assert text.startswith(MINUS) == (value < 0), text  # never "−0.000"
    assert text.startswith("+") == (signed and value > 0), text
    assert "-" not in text  # the minus is a true minus sign


@given(x=st.floats(min_value=-10, max_value=10, allow_nan=False), digits=st.integers(0, 3))
def test_format_percent(x: float, digits: int) -> None:
    text = format_number(x, f".{digits}%")
    assert text.endswith("%")
    assert abs(_parse(text) - 100 * x) <= 0.5 * 10.0**-digits + 1e-9
    assert text.startswith(MINUS) == (_parse(text) < 0)


def test_format_number_special_values() -> None:
    assert format_number(-0.00004, "+.3f") == "0.000"
    assert format_number(-0.0004, ".4f") == f"{MINUS}0.0004"
    assert format_number(1e-8, ".2e") == "1.00e-08"
    assert format_number(-1e-8, ".2e") == f"{MINUS}1.00e-08"
    assert format_number(12345, ",d") == "12,345"
    assert format_number(np.float64("nan")) == "—" and format_number(None, missing="n/a") == "n/a"
    assert format_number(True) == "yes" and format_number(np.bool_(False)) == "no"
    assert format_number(math.inf, "+.2f") == "+∞" and format_number(-math.inf) == f"{MINUS}∞"
    with pytest.raises(ValueError, match="whole numbers"):
        format_number(2.5, "d")
    with pytest.raises(ValueError, match="not understood"):
        format_number(1.0, "0.3")
    with pytest.raises(ValueError, match="expected a number"):
        format_number("1.0")


def test_format_interval() -> None:
    assert format_interval(0.012, -0.004, 0.028) == f"0.012 [{MINUS}0.004, 0.028]"
    assert format_interval(0.012, -0.004, 0.028, "+.3f") == f"+0.012 [{MINUS}0.004, +0.028]"
    assert format_interval(0.012, float("nan"), 0.028) == "0.012"
    assert format_interval(float("nan"), 0.0, 1.0, missing="n/a") == "n/a"
    assert format_interval(-0.0001, -0.0002, 0.0003, "+.3f") == "0.000 [0.000, 0.000]"


# -------------------------------------------------------------------------------------- tables


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "dataset": ["sarcasm", "quartz"],
            "gain": [0.0123, -0.00001],
            "gain_lo": [-0.004, np.nan],
            "gain_hi": [0.028, 0.1],
            "holds": [True, False],
            "n_seeds": [3, 5],
            "eps": [np.nan, 0.25],
        }
    )


def test_present_table_headers_formats_and_missing() -> None:
    t = present_table(
        _frame(),
        {
            "dataset": "Data set",
            "gain": "Gain (nats)",
            "holds": "Bound holds",
            "n_seeds": "Seeds",
            "eps": "Misfit ε (nats)",
        },
        formats={"gain": "+.3f", "eps": ".2f"},
        intervals={"gain": ("gain_lo", "gain_hi")},
        missing="n/a",
        caption="An example",
    )
    assert list(t.frame.columns) == [
        "Data set",
        "Gain (nats)",
        "Bound holds",
        "Seeds",
        "Misfit ε (nats)",
    ]
    assert t.frame["Gain (nats)"].tolist() == [f"+0.012 [{MINUS}0.004, +0.028]", "0.000"]
    assert t.frame["Bound holds"].tolist() == ["yes", "no"]
    assert t.frame["Seeds"].tolist() == ["3", "5"]
    assert t.frame["Misfit ε (nats)"].tolist() == ["n/a", "0.25"]
    assert t.numeric == {"Gain (nats)", "Seeds", "Misfit ε (nats)"}
    page = t._repr_html_()
    assert page.startswith('<div class="w2s-table-wrap"><table class="w2s-table">')
    assert "<caption>An example</caption>" in page and "nan" not in page.lower()
    assert '<th class="w2s-num">Seeds</th>' in page and "<th>Data set</th>" in page
    assert "An example" in repr(t) and "sarcasm" in repr(t)


def test_present_table_escapes_html() -> None:
    t = present_table(pd.DataFrame({"a": ["<b>x</b> & y"]}), {"a": "Name <1>"})
    page = t._repr_html_()
    assert "&lt;b&gt;x&lt;/b&gt; &amp; y" in page and "Name &lt;1&gt;" in page


@pytest.mark.parametrize(
    ("columns", "kwargs", "problem"),
    [
        ({"gain": "eps_t"}, {}, "code name"),
        ({"gain": "  "}, {}, "non-empty"),
        ({"gain": "Gain", "eps": "Gain"}, {}, "share a header"),
        ({"nope": "Gain"}, {}, "not in the table"),
        ({"gain": "Gain"}, {"intervals": {"gain": ("gain_lo", "missing_hi")}}, "not in the table"),
        ({"gain": "Gain"}, {"formats": {"gain": "%.3f"}}, "not understood"),
        ({}, {}, "mapping"),
        ({"gain": "Gain"}, {"max_rows": 1}, "summarise"),
    ],
)
def test_present_table_refuses(columns: dict, kwargs: dict, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        present_table(_frame(), columns, **kwargs)


def test_present_table_refuses_non_frames() -> None:
    with pytest.raises(ValueError, match="DataFrame"):
        present_table([[1, 2]], {"a": "A"})


# ---------------------------------------------------------------------------------------- glue


@pytest.fixture
def glued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, object, bool]]:
    calls: list[tuple[str, object, bool]] = []
    monkeypatch.setattr(glue, "glue", lambda k, v, display=True: calls.append((k, v, display)))
    return calls


def test_glue_all_converts_values(glued: list) -> None:
    fig, _ = plt.subplots()
    t = present_table(_frame(), {"dataset": "Data set"})
    glue.glue_all(
        {"a": np.float64(0.25), "b": np.int64(3), "c": "**bold**", "d": True, "e-1": t, "f": fig}
    )
    plt.close(fig)
    values = {k: v for k, v, _ in glued}
    assert all(display is False for *_, display in glued)
    assert type(values["a"]) is float and values["a"] == 0.25
    assert type(values["b"]) is int and values["b"] == 3
    assert isinstance(values["c"], Markdown) and values["c"].data == "**bold**"
    assert isinstance(values["d"], Markdown) and values["d"].data == "yes"
    assert values["e-1"] is t and values["f"] is fig


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"x": float("nan")}, "nan"),
        ({"x": np.float32("inf")}, "inf"),
        ({"x": ""}, "empty"),
        ({"x": pd.DataFrame({"a": [1]})}, "present_table"),
        ({"x": [1, 2]}, "cannot glue"),
        ({"x:y": 1.0}, "format spec"),
        ({"x y": 1.0}, "letters"),
    ],
)
def test_glue_all_refuses_and_glues_nothing(glued: list, values: dict, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        glue.glue_all({"ok": 1.0, **values})
    assert glued == [], "a bad value must leave the page's glue untouched"


# --------------------------------------------------------------------------------------- frame


def test_word_count_reads_prose_only() -> None:
    text = (
        "Three plain words.\n\n$$\nx = y + z\n$$\n\nInline $a+b$ maths and "
        "{glue:text}`key:.3f` roles.\n\n```python\nignored code words here\n```\n\n"
        "```{dropdown} Solution\n:class: note\nFour words of solution.\n```\n"
    )
    words, equations = frame.word_count(text)
    # Three plain words (3) + Inline x maths and x roles (6) + Solution (1) + Four..solution (4)
    assert (words, equations) == (14, 1)


def _notebook(path: Path, words: int, equations: int = 0) -> Path:
    nb = nbformat.v4.new_notebook()
    body = " ".join(["word"] * words) + "\n\n" + "$$\nx\n$$\n" * equations
    nb.cells = [nbformat.v4.new_markdown_cell(body), nbformat.v4.new_code_cell("x = 1")]
    nbformat.write(nb, path)
    return path


@pytest.mark.parametrize(
    ("words", "equations", "minutes"),
    [(10, 0, 5), (1500, 0, 10), (1501, 0, 15), (3000, 0, 20), (1200, 6, 10), (1200, 7, 15)],
)
def test_reading_minutes(tmp_path: Path, words: int, equations: int, minutes: int) -> None:
    # 150 words a minute, 20 s an equation, rounded up to a multiple of 5 minutes
    path = _notebook(tmp_path / "c.ipynb", words, equations)
    assert frame.reading_minutes(path) == minutes


def test_reading_minutes_refuses_other_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="notebook"):
        frame.reading_minutes(tmp_path / "missing.ipynb")
    (tmp_path / "x.ipynb").write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="cannot be read"):
        frame.reading_minutes(tmp_path / "x.ipynb")


def test_cold_seconds_counts_each_piece_once() -> None:
    pieces = [("ceiling", 100.0), ("weak-a", 30.0), ("ceiling", 100.0), ("weak-b", 20.0)]
    assert frame.cold_seconds(12.5, pieces) == pytest.approx(162.5)
    assert frame.cold_seconds(12.5) == 12.5
    with pytest.raises(ValueError, match="one training time"):
        frame.cold_seconds(1.0, [("ceiling", 100.0), ("ceiling", 90.0)])
    with pytest.raises(ValueError, match="pairs"):
        frame.cold_seconds(1.0, [("ceiling",)])
    with pytest.raises(ValueError, match="build_seconds"):
        frame.cold_seconds(-1.0)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "under a minute"),
        (59.9, "under a minute"),
        (60, "about 1 minute"),
        (89, "about 1 minute"),
        (91, "about 2 minutes"),
        (450, "about 8 minutes"),
    ],
)
def test_minutes_text(seconds: float, text: str) -> None:
    assert frame.minutes_text(seconds) == text


def test_frame_values_show_the_cold_time_after_a_warm_build(tmp_path: Path) -> None:
    path = _notebook(tmp_path / "c.ipynb", 3000)
    warm = frame.frame_values(path, 8.0, [("student", 200.0), ("ceiling", 250.0)])
    assert set(warm) == set(frame.FRAME_KEYS)
    assert warm["frame_read_min"] == 20 and warm["frame_build_s"] == 8.0
    assert warm["frame_cold_text"] == "about 8 minutes"  # 458 s
    assert "8 s in this build (most of it read from the cache)" in warm["frame_run_text"]
    cold = frame.frame_values(path, 458.0)
    assert cold["frame_cold_text"] == warm["frame_cold_text"]
    assert "read from the cache" not in cold["frame_run_text"]


def test_frame_template_uses_the_glued_keys() -> None:
    assert "{glue:md}`frame_run_text`" in frame.FRAME_TEMPLATE
    assert ":class: chapter-frame" in frame.FRAME_TEMPLATE
    for heading in ("Prerequisites", "What you will learn", "Main result", "Time"):
        assert re.search(rf"^{heading}$", frame.FRAME_TEMPLATE, flags=re.M), heading


def test_glue_frame_glues_its_keys(glued: list, tmp_path: Path) -> None:
    import time

    path = _notebook(tmp_path / "c.ipynb", 100)
    values = frame.glue_frame(path, time.perf_counter() - 2.0, [("x", 60.0)])
    assert [k for k, *_ in glued] == list(frame.FRAME_KEYS)
    assert 2.0 <= values["frame_build_s"] < 60
    with pytest.raises(ValueError, match="future"):
        frame.glue_frame(path, time.perf_counter() + 100)


# ------------------------------------------------------------------------------- numbers page


def test_design_table_reads_the_preset() -> None:
    p = get_preset("ci")
    t = numbers.design_table(p)
    assert len(t.frame) == 6
    assert t.frame["Seeds"].iloc[0].startswith(f"{len(p.seeds)} (")
    kl = p.grid("kl")
    assert f"planted {len(kl.planted_seeds)} (" in t.frame["Seeds"].iloc[5]
    assert all(not tables.CODE_NAME.match(h) for h in t.frame.columns)


def test_interval_coverage_is_a_share_with_its_error() -> None:
    cov = numbers.interval_coverage(
        n_seeds=(2, 3), seed_sds=(0.0,), n_test=200, reps=60, use_cache=False
    )
    assert cov["n_seeds"].tolist() == [2, 3] and cov["seed_sd"].tolist() == [0.0, 0.0]
    assert cov["coverage"].between(0, 1).all()
    assert np.allclose(cov["coverage_se"], np.sqrt(cov.coverage * (1 - cov.coverage) / 60))
    # conservative with no seed effect: the t part has nothing to cover, so nearly always holds
    assert (cov["coverage"] >= 0.9).all()
    again = numbers.interval_coverage(
        n_seeds=(2, 3), seed_sds=(0.0,), n_test=200, reps=60, use_cache=False
    )
    pd.testing.assert_frame_equal(cov, again)  # seeded: the page's numbers are reproducible
    glued = numbers.coverage_glue(cov, reps=60, n_test=200)
    assert glued["cov_reps"] == 60 and glued["cov_min"].endswith("%")
    with pytest.raises(ValueError, match="n_seeds"):
        numbers.interval_coverage(n_seeds=(1,), use_cache=False)
