"""Browser tests: say where the screenshots of the site went (they are not committed)."""

from __future__ import annotations

from pathlib import Path

SHOTS = Path(__file__).resolve().parents[2] / "_build" / "screenshots"


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ARG001
    folders = [SHOTS / name for name in ("desktop", "phone") if (SHOTS / name).is_dir()]
    counts = [f"{f.name}: {len(list(f.glob('*.png')))}" for f in folders]
    if counts:
        terminalreporter.write_sep("-", "screenshots of every page")
        terminalreporter.write_line(f"{SHOTS} ({', '.join(counts)} pages)")
