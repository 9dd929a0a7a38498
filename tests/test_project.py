"""The README's commands are the ones CI runs, and the package is wired up as documented."""
from __future__ import annotations

import re
from pathlib import Path

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


def test_install_commands_build_against_the_installed_torch():
    for command in readme_commands():
        assert "--no-build-isolation" in command
        assert "torch==" in command


CROSS_CHECK_PACKAGES = ["bjontegaard", "pytorch_msssim"]  # imported by test_bdrate, test_metrics


def test_cross_check_packages_are_test_extras_and_explained():
    """CI installs the ``test`` extra, so the cross-checks against these packages run there."""
    import tomllib

    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
    names = {re.split(r"[<>=!~ \[;]", requirement, maxsplit=1)[0] for requirement in extra}
    dependencies = (ROOT / "README.md").read_text().split("## Dependencies and why", 1)[1].split("\n## ", 1)[0]
    for package in CROSS_CHECK_PACKAGES:
        assert package in names, f"{package} is missing from the test extra"
        assert f"**{package}**" in dependencies, f"the README does not say why {package} is needed"
