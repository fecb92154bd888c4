"""A small book for the browser and PDF tests, built with the book's own configuration.

:func:`write_fixture_sources` writes three pages that use the book's configuration
(``_config.yml``), extension (``book/_ext``), stylesheet (``book/_static``), bibliography and
bundled MathJax; :func:`build_fixture_site` builds them with Jupyter Book 1:

- ``book/index``: a long equation, a long equation numbered by MathJax, a wide Markdown table, a
  captioned figure, citations (two Yao et al. 2025 papers), the downloads list, the bibliography;
- ``notebooks/clean``: a wide presented table (:func:`w2s_utils.book.tables.present_table`) and a
  figure output with a caption, a name and alt text (cell metadata ``mystnb.figure``/``image``);
- ``notebooks/noisy``: one instance of every problem the browser test looks for.
"""

from __future__ import annotations

import base64
import copy
import functools
import http.server
import io
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import yaml
from myst_nb.ext.glue import GLUE_PREFIX

from w2s_utils.book.frame import FRAME_TEMPLATE
from w2s_utils.book.tables import present_table

ROOT = Path(__file__).resolve().parents[2]
#: The chapter frame as a chapter pastes it, filled with the fixture's own glue keys.
FRAME = FRAME_TEMPLATE.replace("HEADLINE_KEY:+.3f", "n_fixture:d").replace(
    "{ref}`running-a-chapter`", "see the preface"
)
PAGES = ["book/index.html", "notebooks/clean.html", "notebooks/noisy.html"]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@contextmanager
def serve(folder: Path) -> Iterator[str]:
    """Serve ``folder`` on 127.0.0.1; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _png(color: str, size: tuple[float, float] = (4.0, 2.5)) -> str:
    """A small matplotlib figure as base64 PNG (a notebook output)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size, dpi=100)
    ax.plot([0, 1, 2], [0, 1, 0], color=color)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _notebook(cells: list[dict]) -> dict:
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def _md(text: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": text}


def _glued(name: str, data: dict) -> dict:
    """An output of ``myst_nb.glue(name, value, display=False)``: stored, not shown."""
    prefix = GLUE_PREFIX
    return {
        "output_type": "display_data",
        "metadata": {"scrapbook": {"name": name, "mime_prefix": prefix}},
        "data": {prefix + k: v for k, v in data.items()},
    }


def _code(outputs: list[dict], metadata: dict | None = None, source: str = "x") -> dict:
    return {
        "cell_type": "code",
        "execution_count": 1,
        "metadata": metadata or {},
        "outputs": outputs,
        "source": source,
    }


LONG_EQUATION = "$$\n" + " + ".join(f"\\frac{{a_{{{i}}}}}{{b_{{{i}}}}}" for i in range(60)) + "\n$$"
#: numbered by MathJax (\tag): MathJax gives it a min-width of its natural width (width="full")
TAGGED_EQUATION = (
    "$$\n" + " + ".join(f"\\frac{{c_{{{i}}}}}{{d_{{{i}}}}}" for i in range(40)) + "\n\\tag{7}\n$$"
)
WIDE_MD_TABLE = (
    "| "
    + " | ".join(f"column header {i}" for i in range(14))
    + " |\n"
    + "|"
    + " --- |" * 14
    + "\n"
    + "| "
    + " | ".join(f"value {i}.000" for i in range(14))
    + " |\n"
)


def write_fixture_sources(out: Path) -> Path:
    """Write the fixture book's sources (see the module docstring) to ``out/src``; returns it."""
    src = out / "src"
    (src / "book").mkdir(parents=True)
    (src / "notebooks").mkdir()
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    config = copy.deepcopy(config)
    config["title"] = "Fixture"
    config.pop("logo", None)
    config["html"]["favicon"] = str(ROOT / "book" / "site_root" / "favicon.ico")
    sphinx = config["sphinx"]
    sphinx["local_extensions"] = {"w2s_book_ext": str(ROOT / "book" / "_ext")}
    sphinx["config"]["html_extra_path"] = [str(ROOT / "book" / "_extra")]
    sphinx["config"]["html_static_path"] = [str(ROOT / "book" / "_static")]
    mathjax = ROOT / "book" / "_extra" / "mathjax" / "tex-chtml.js"
    sphinx["config"]["w2s_mathjax_file"] = str(mathjax)
    sphinx["config"]["w2s_downloads_dir"] = "book/downloads"
    sphinx["config"]["nitpicky"] = False
    config["bibtex_bibfiles"] = [str(ROOT / "book" / "references.bib")]
    (src / "_config.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    toc = {
        "format": "jb-book",
        "root": "book/index",
        "chapters": [{"file": "notebooks/clean"}, {"file": "notebooks/noisy"}],
    }
    (src / "_toc.yml").write_text(yaml.safe_dump(toc), encoding="utf-8")
    (src / "CITATION.cff").write_text(
        (ROOT / "CITATION.cff").read_text(encoding="utf-8"), encoding="utf-8"
    )
    (src / "book" / "downloads").mkdir()
    (src / "book" / "downloads" / "w2s_utils-0.0.0-py3-none-any.whl").write_bytes(b"PK")
    (src / "book" / "fig.png").write_bytes(base64.b64decode(_png("C0")))
    (src / "book" / "index.md").write_text(
        "# Fixture preface\n\n"
        "The paper {cite:t}`yao2025understanding` and its sequel {cite:t}`yao2025revisiting`; "
        "see also {cite:p}`burns2023weak`.\n\n"
        f"A long equation:\n\n{LONG_EQUATION}\n\nA numbered one:\n\n{TAGGED_EQUATION}\n\n"
        f"{WIDE_MD_TABLE}\n"
        "```{figure} fig.png\n:name: fig-preface\n:alt: A tent-shaped blue line\n\n"
        "A captioned figure.\n```\n\n"
        "See {numref}`fig-preface`. Glued from a chapter: "
        "{glue:text}`../notebooks/clean.ipynb::n_fixture:d` fixtures.\n\n"
        "```{prf:theorem} A fixture result\n:label: thm-fixture\n\nEvery fixture passes.\n```\n\n"
        "```{w2s-downloads}\n```\n\n"
        "```{bibliography}\n```\n",
        encoding="utf-8",
    )
    wide = pd.DataFrame({f"c{i}": [0.1 * i - 0.3, float("nan")] for i in range(16)})
    table = present_table(
        wide,
        {f"c{i}": f"Quantity {i} (nats)" for i in range(16)},
        formats={f"c{i}": "+.4f" for i in range(16)},
    )
    figure_meta = {
        "mystnb": {
            "figure": {"caption": "A figure output with its caption.", "name": "fig-clean"},
            "image": {"alt": "A tent-shaped orange line", "width": "80%"},
        }
    }
    clean = _notebook(
        [
            _md(
                f"# Clean chapter\n\n{FRAME}\nA long equation again:\n\n{LONG_EQUATION}\n\n"
                "The figure is {numref}`fig-clean`; the result is {prf:ref}`thm-fixture`.\n\n"
                "```{dropdown} Solution\nThe answer holds because every fixture passes by "
                "construction.\n```"
            ),
            _code(
                [
                    _glued("n_fixture", {"text/plain": "3"}),
                    _glued(
                        "frame_run_text",
                        {
                            "text/markdown": "about 5 minutes to read; to run, under a minute.",
                            "text/plain": "<IPython.core.display.Markdown object>",
                        },
                    ),
                    {
                        "output_type": "display_data",
                        "metadata": {},
                        "data": {"text/html": table._repr_html_(), "text/plain": repr(table)},
                    },
                ]
            ),
            _code(
                [
                    {
                        "output_type": "display_data",
                        "metadata": {},
                        "data": {"image/png": _png("C1"), "text/plain": "<Figure>"},
                    }
                ],
                figure_meta,
            ),
        ]
    )
    bad_table = (
        "<table class='dataframe'><thead><tr><th>eps_t</th><th>Gain</th><th>Holds</th></tr>"
        "</thead><tbody><tr><td>NaN</td><td>-0.0000</td><td>True</td></tr></tbody></table>"
    )
    noisy = _notebook(
        [
            _md(
                "# Noisy chapter\n\nA PLACEHOLDER sentence and [a link](https://example.com/x).\n\n"
                '<div style="width: 2400px"><table><tr><td>too wide for any column</td></tr>'
                "</table></div>\n"
            ),
            _code(
                [
                    {
                        "output_type": "stream",
                        "name": "stderr",
                        "text": "clipping sweep:   0%|          | 0/150 [00:00<?, ?it/s]\n",
                    }
                ]
            ),
            _code(
                [
                    {
                        "output_type": "stream",
                        "name": "stderr",
                        "text": "/root/.venv/lib/python3.11/site-packages/torch/x.py:3: "
                        "UserWarning: something\n",
                    }
                ]
            ),
            _code(
                [
                    {
                        "output_type": "execute_result",
                        "execution_count": 1,
                        "metadata": {},
                        "data": {"text/plain": "<IPython.core.display.Markdown object>"},
                    }
                ]
            ),
            _code(
                [
                    {
                        "output_type": "display_data",
                        "metadata": {},
                        "data": {"text/html": bad_table, "text/plain": "table"},
                    }
                ]
            ),
            _code(
                [
                    {
                        "output_type": "display_data",
                        "metadata": {},
                        "data": {"image/png": _png("C2", (16.0, 3.0)), "text/plain": "<Figure>"},
                    }
                ]
            ),
        ]
    )
    for name, nb in (("clean", clean), ("noisy", noisy)):
        (src / "notebooks" / f"{name}.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    return src


def build_fixture_site(out: Path) -> Path:
    """Build the fixture book (:func:`write_fixture_sources`) into ``out/_build/html``; returns
    the site folder."""
    src = write_fixture_sources(out)
    cmd = [
        sys.executable,
        "-c",
        "import sys; from jupyter_book.cli.main import main; sys.exit(main())",
        "build",
        str(src),
        "--path-output",
        str(out),
        "--builder",
        "html",
        "--all",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, NO_COLOR="1"))
    site = out / "_build" / "html"
    if (site / "index.html").is_file():  # what `make pdf` adds (the PDF test checks a real one)
        (site / "w2s-book.pdf").write_bytes(b"%PDF-1.4\n%%EOF\n")
    if proc.returncode != 0 or not (site / "index.html").is_file():
        raise AssertionError(f"fixture build failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return site
