"""The README's commands are the ones CI runs, and the package is wired up as documented."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## The two commands", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```\n(.+?)\n```", section, flags=re.S)


def test_readme_gives_exactly_two_commands():
    commands = readme_commands()
    assert len(commands) == 2
    assert commands[0].rstrip().endswith("lwdvc demo")
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text()
    assert readme_commands()[1].strip() in ci


def test_ci_builds_against_the_declared_oldest_torch():
    """pyproject's lower bound on torch is the version .ci/compat builds and tests against, CI
    runs it, and the README states the range."""
    import tomllib

    compat = (ROOT / ".ci" / "compat").read_text()
    oldest = re.search(r'^TORCH_VERSION="(\d+)\.(\d+)\.\d+"', compat, flags=re.M).groups()
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    bound = next(d for d in dependencies if re.match(r"torch\b", d))
    assert bound == f"torch>={oldest[0]}.{oldest[1]}", bound
    assert "bash .ci/compat" in (ROOT / ".ci" / "run").read_text()
    assert f"torch {oldest[0]}.{oldest[1]} to" in (ROOT / "README.md").read_text()


def test_install_commands_build_against_the_installed_torch():
    for command in readme_commands():
        assert "--no-build-isolation" in command
        assert "torch==" in command


CROSS_CHECK_PACKAGES = ["bjontegaard", "pytorch_msssim", "scikit-image"]  # test_bdrate, test_metrics, test_stills


def test_cross_check_packages_are_test_extras_and_explained():
    """CI installs the ``test`` extra, so the cross-checks against these packages run there."""
    import tomllib

    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
    names = {re.split(r"[<>=!~ \[;]", requirement, maxsplit=1)[0] for requirement in extra}
    dependencies = (ROOT / "README.md").read_text().split("## Dependencies and why", 1)[1].split("\n## ", 1)[0]
    for package in CROSS_CHECK_PACKAGES:
        assert package in names, f"{package} is missing from the test extra"
        assert f"**{package}**" in dependencies, f"the README does not say why {package} is needed"


def test_compact_and_optimize_are_plain_functions():
    import inspect
    import types

    import lwdvc_kernels
    import lwdvc_kernels.compaction
    import lwdvc_kernels.optimization

    for name in ("compact", "optimize"):
        function = getattr(lwdvc_kernels, name)
        assert inspect.isfunction(function), name
        assert not isinstance(function, types.ModuleType), name
    assert type(lwdvc_kernels.optimization) is types.ModuleType  # a plain module, not callable
    assert not callable(lwdvc_kernels.optimization)


def test_ruff_is_clean():
    """The linter configured in pyproject.toml (ruff) finds nothing in the tree."""
    import shutil
    import subprocess

    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        pytest.fail("ruff is not installed: it is part of the test extra (pip install -e '.[test]')")
    result = subprocess.run([ruff, "check", "--no-cache", str(ROOT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
