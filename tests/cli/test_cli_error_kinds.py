"""Only the project's user errors (and unreadable paths) become one line; bugs keep their traceback."""
from __future__ import annotations

import subprocess
import sys

import pytest

import lwdvc.commands.eval
from lwdvc.cli import main
from lwdvc.errors import BadArgumentError, UnknownNameError


def _run_raising(monkeypatch, error: BaseException) -> None:
    """Make ``lwdvc eval`` raise ``error`` (the parser picks up the command's run when built)."""
    def run(args):
        raise error
    monkeypatch.setattr(lwdvc.commands.eval, "run", run)


@pytest.mark.parametrize("bug", [TypeError("unsupported operand"), KeyError("weight"),
                                 ValueError("math domain error"), AttributeError("no attribute 'x'")])
def test_a_bug_propagates(monkeypatch, capsys, bug):
    _run_raising(monkeypatch, bug)
    with pytest.raises(type(bug)) as raised:
        main(["eval"])
    assert raised.value is bug
    assert "error:" not in capsys.readouterr().err  # not reported as the user's mistake


def test_a_bug_prints_its_traceback_in_a_real_process():
    code = ("import sys, lwdvc.commands.eval as e\n"
            "def run(args): return 1 + 'a'\n"
            "e.run = run\n"
            "from lwdvc.cli import main\n"
            "sys.exit(main(['eval']))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "TypeError: unsupported operand" in result.stderr


@pytest.mark.parametrize("error, message", [
    (BadArgumentError("--frames must be\n  >= 1"), "--frames must be >= 1"),
    (UnknownNameError("no pretrained model 'x'"), "no pretrained model 'x'"),
    (FileNotFoundError("no video at a.mp4"), "no video at a.mp4"),
    (PermissionError("cannot read a.yuv"), "cannot read a.yuv"),
])
def test_a_user_error_is_exactly_one_line_and_exit_status_2(monkeypatch, capsys, error, message):
    _run_raising(monkeypatch, error)
    assert main(["eval"]) == 2
    assert capsys.readouterr().err == f"lwdvc eval: error: {message}\n"


def test_a_real_user_error_is_exactly_one_line(capsys):
    assert main(["eval", "pretrained:no_such_model"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("lwdvc eval: error: no pretrained model 'no_such_model'")


def test_debug_reraises_a_user_error(monkeypatch, capsys):
    with pytest.raises(UnknownNameError, match="no pretrained model 'no_such_model'"):
        main(["--debug", "eval", "pretrained:no_such_model"])
    _run_raising(monkeypatch, BadArgumentError("bad option"))
    with pytest.raises(BadArgumentError, match="bad option"):
        main(["--debug", "eval"])
    assert capsys.readouterr().err == ""
