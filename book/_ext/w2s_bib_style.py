"""Author-year citations for the book: one label style for the text and the bibliography.

Registered by :mod:`w2s_book_ext` (``bibtex_default_style: w2s_author_year`` and
``bibtex_reference_style: w2s_author_year`` in ``_config.yml``):

- **Labels** read ``Yao et al. 2025a``: the first author's last name (two authors: both, joined by
  "and"; three or more: "et al."), a space and the year. Works by the same authors in the same year
  get the suffixes a, b, ... in bibliography order, so the two Yao et al. papers of 2025 are
  2025a (arXiv 2502.01458) and 2025b (arXiv 2502.11107).
- **Order** of the bibliography: by authors' last names, then year, then arXiv identifier
  (chronological within a year: the suffixes follow publication order), then title.
- **In the text** ``{cite:t}`` gives "Yao et al. (2025a)" and ``{cite:p}`` "(Yao et al., 2025a)":
  the year printed is the label's year, suffix included, so text and bibliography agree.
- The bibliography lists each entry under its label in brackets, ``[Yao et al. 2025a]``, never a
  number.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from pybtex.plugin import register_plugin as register_pybtex_plugin
from pybtex.richtext import Text
from pybtex.style.formatting.plain import Style as PlainStyle
from pybtex.style.labels import BaseLabelStyle
from pybtex.style.sorting import BaseSortingStyle
from sphinxcontrib.bibtex.plugin import register_plugin as register_bibtex_plugin
from sphinxcontrib.bibtex.style.referencing import BracketStyle
from sphinxcontrib.bibtex.style.referencing.author_year import AuthorYearReferenceStyle
from sphinxcontrib.bibtex.style.referencing.basic_author_year import (
    BasicAuthorYearParentheticalReferenceStyle,
    BasicAuthorYearTextualReferenceStyle,
)
from sphinxcontrib.bibtex.style.referencing.extra_author import ExtraAuthorReferenceStyle
from sphinxcontrib.bibtex.style.referencing.extra_empty import ExtraEmptyReferenceStyle
from sphinxcontrib.bibtex.style.referencing.extra_label import ExtraLabelReferenceStyle
from sphinxcontrib.bibtex.style.referencing.extra_year import ExtraYearReferenceStyle
from sphinxcontrib.bibtex.style.template import join, join2, node, post_text, pre_text, reference
from sphinxcontrib.bibtex.style.template import year as plain_year

STYLE_NAME = "w2s_author_year"
SUFFIXES = "abcdefghijklmnopqrstuvwxyz"
_LABEL_YEAR = re.compile(r"(\d{4}[a-z]?)$")


def _last_name(person) -> str:
    """A person's last name(s) as plain text (LaTeX accents decoded: ``B{\\l}asiok`` ->
    ``Błasiok``; a corporate author in braces, ``{Qwen Team}``, stays whole)."""
    parts = [p.render_as("text") for p in person.rich_prelast_names + person.rich_last_names]
    return " ".join(parts) or str(person)


def _persons(entry) -> list:
    for role in ("author", "editor"):
        if entry.persons.get(role):
            return list(entry.persons[role])
    return []


def author_part(entry) -> str:
    """``Yao``, ``Mulgund and Pabbaraju`` or ``Yao et al.``; the title when nobody is named."""
    names = [_last_name(p) for p in _persons(entry)]
    if not names:
        return Text.from_latex(entry.fields.get("title", "Anonymous")).render_as("text")
    if len(names) == 1:
        return names[0]
    if len(names) == 2:
        return f"{names[0]} and {names[1]}"
    return f"{names[0]} et al."


def base_label(entry) -> str:
    """The label before disambiguation: ``Yao et al. 2025``."""
    return f"{author_part(entry)} {entry.fields.get('year', 'n.d.')}"


class AuthorYearLabelStyle(BaseLabelStyle):
    """``Yao et al. 2025a``: author part and year, with a suffix where two entries would share a
    label (suffixes in the order the entries are given, i.e. bibliography order)."""

    def format_labels(self, sorted_entries: Iterable) -> Iterator[str]:
        entries = list(sorted_entries)
        labels = [base_label(e) for e in entries]
        counts = Counter(labels)
        seen: Counter = Counter()
        for label in labels:
            if counts[label] == 1:
                yield label
                continue
            if seen[label] >= len(SUFFIXES):
                raise ValueError(f"more than {len(SUFFIXES)} works labelled {label!r}")
            yield label + SUFFIXES[seen[label]]
            seen[label] += 1


class AuthorYearSortingStyle(BaseSortingStyle):
    """Authors' last names, year, arXiv identifier (chronological within a year), title."""

    def sorting_key(self, entry) -> tuple[str, ...]:
        names = " ".join(_last_name(p) for p in _persons(entry)).lower()
        return (
            names,
            entry.fields.get("year", ""),
            entry.fields.get("eprint", ""),
            entry.fields.get("title", "").lower(),
        )


class AuthorYearStyle(PlainStyle):
    """pybtex's plain entry formatting with author-year labels and order."""

    default_label_style = AuthorYearLabelStyle
    default_sorting_style = AuthorYearSortingStyle


@node
def label_year(children, data) -> Text:
    """The year as the bibliography label prints it (``2025a``), else the entry's year."""
    assert not children
    label = getattr(data.get("formatted_entry"), "label", "") or ""
    match = _LABEL_YEAR.search(label)
    if match:
        return Text(match.group(1))
    return plain_year.format_data(data)


@dataclass
class _Parenthetical(BasicAuthorYearParentheticalReferenceStyle):
    def inner(self, role_name: str):
        return join2(sep1=self.pre_text_sep, sep2=self.post_text_sep)[
            pre_text,
            reference[
                join(sep=self.author_year_sep)[
                    self.person.author_or_editor_or_title(full="s" in role_name),
                    label_year,
                ]
            ],
            post_text,
        ]


@dataclass
class _Textual(BasicAuthorYearTextualReferenceStyle):
    def inner(self, role_name: str):
        return join(sep=self.text_reference_sep)[
            self.person.author_or_editor_or_title(full="s" in role_name),
            join[
                self.bracket.left,
                join2(sep1=self.pre_text_sep, sep2=self.post_text_sep)[
                    pre_text, reference[label_year], post_text
                ],
                self.bracket.right,
            ],
        ]


@dataclass
class _Year(ExtraYearReferenceStyle):
    def inner(self, role_name: str):
        return reference[label_year]


def _round() -> BracketStyle:
    return BracketStyle(left="(", right=")")


@dataclass
class AuthorYearReferences(AuthorYearReferenceStyle):
    """``{cite:t}`` -> Yao et al. (2025a); ``{cite:p}`` -> (Yao et al., 2025a)."""

    def __post_init__(self) -> None:
        self.bracket_textual = _round()
        self.bracket_parenthetical = _round()
        self.bracket_year = _round()
        self.styles.extend(
            [
                _Parenthetical(
                    bracket=self.bracket_parenthetical,
                    person=self.person,
                    author_year_sep=self.author_year_sep,
                    pre_text_sep=self.pre_text_sep,
                    post_text_sep=self.post_text_sep,
                ),
                _Textual(
                    bracket=self.bracket_textual,
                    person=self.person,
                    text_reference_sep=self.text_reference_sep,
                    pre_text_sep=self.pre_text_sep,
                    post_text_sep=self.post_text_sep,
                ),
                ExtraAuthorReferenceStyle(bracket=self.bracket_author, person=self.person),
                ExtraLabelReferenceStyle(bracket=self.bracket_label),
                _Year(bracket=self.bracket_year),
                ExtraEmptyReferenceStyle(),
            ]
        )
        # GroupReferenceStyle.__post_init__ maps role names to the styles above; the parent's
        # own __post_init__ would add its default styles first, so it is skipped on purpose.
        super(AuthorYearReferenceStyle, self).__post_init__()


def register() -> None:
    """Make ``w2s_author_year`` known to pybtex (entries, labels, order) and to
    sphinxcontrib-bibtex (references in the text). Idempotent."""
    register_pybtex_plugin("pybtex.style.formatting", STYLE_NAME, AuthorYearStyle, force=True)
    register_bibtex_plugin(
        "sphinxcontrib.bibtex.style.referencing", STYLE_NAME, AuthorYearReferences, force=True
    )
