"""``python -m w2s_utils.book.runner --execute-child SPEC``: the papermill child of the runner."""

import sys

from w2s_utils.book.runner.cli import child_main

if __name__ == "__main__":
    raise SystemExit(child_main(sys.argv[1:]))
