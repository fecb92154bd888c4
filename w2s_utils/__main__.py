"""``python -m w2s_utils`` entry point."""

from w2s_utils.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
