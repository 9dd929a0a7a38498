"""Import direction between the packages: lower layers never import higher ones.

Every .py file of ``lwdvc_kernels`` and ``python/lwdvc`` is parsed with ``ast``; every import
counts, also one inside a function and ``importlib.import_module("...")`` with a literal name.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCE_ROOTS = [ROOT, ROOT / "python"]  # lwdvc_kernels/ lies at the top, lwdvc/ under python/
APPLICATION = ["lwdvc.train", "lwdvc.eval", "lwdvc.prune", "lwdvc.distill", "lwdvc.commands", "lwdvc.cli"]
FRONT_END = ["lwdvc.commands", "lwdvc.cli"]

# (importing package, packages it must not import)
RULES = [
    ("lwdvc_kernels", ["lwdvc"]),
    ("lwdvc.models", [*APPLICATION, "lwdvc.bitstream"]),
    ("lwdvc.data", [*APPLICATION, "lwdvc.bitstream"]),
    ("lwdvc.bitstream", APPLICATION),
    ("lwdvc.prune", ["lwdvc.distill", *FRONT_END]),
    ("lwdvc.distill", ["lwdvc.prune", *FRONT_END]),
]


@dataclass(frozen=True)
class Import:
    """One imported module name, where it is imported (file and line)."""

    importer: str
    path: Path
    line: int
    module: str

    def __str__(self) -> str:
        shown = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path
        return f"{shown}:{self.line}: {self.importer} imports {self.module}"


def within(module: str, package: str) -> bool:
    """True when ``module`` is ``package`` or inside it."""
    return module == package or module.startswith(package + ".")


def breaks_rule(importer: str, module: str) -> bool:
    """True when module ``importer`` must not import ``module``."""
    return any(within(importer, package) and any(within(module, f) for f in forbidden)
               for package, forbidden in RULES)


def module_name(path: Path, source_roots: list[Path] = SOURCE_ROOTS) -> str:
    """The dotted module name of a source file."""
    for source_root in source_roots:
        relative = path.relative_to(source_root) if path.is_relative_to(source_root) else None
        if relative is not None and relative.parts[0] in ("lwdvc", "lwdvc_kernels"):
            parts = list(relative.with_suffix("").parts)
            return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    raise ValueError(f"{path} is not in a package")


def source_files() -> list[Path]:
    return sorted([*(ROOT / "lwdvc_kernels").rglob("*.py"), *(ROOT / "python" / "lwdvc").rglob("*.py")])


def _absolute(importer: str, is_package: bool, level: int, module: str | None) -> str:
    """The absolute name of a (possibly relative) ``from ... import``'s module."""
    if level == 0:
        return module or ""
    parts = importer.split(".")
    base = parts if is_package else parts[:-1]
    base = base[:len(base) - (level - 1)]
    return ".".join([*base, module] if module else base)


def imports_of(path: Path, source_roots: list[Path] = SOURCE_ROOTS) -> list[Import]:
    """Every module ``path`` imports: for ``from X import a`` both X and X.a (a may be a module)."""
    importer = module_name(path, source_roots)
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(importer, is_package, node.level, node.module)
            names = [base, *(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")]
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            names = [node.args[0].value]
        found += [Import(importer, path, node.lineno, name) for name in names]
    return found


def violations() -> list[Import]:
    """Every import against the rules, one per import statement (its first offending name)."""
    bad: dict[tuple[Path, int], Import] = {}
    for path in source_files():
        for imported in imports_of(path):
            if breaks_rule(imported.importer, imported.module):
                bad.setdefault((imported.path, imported.line), imported)
    return list(bad.values())


def test_no_package_imports_a_layer_above_it():
    bad = violations()
    assert not bad, "imports against the layering:\n" + "\n".join(map(str, bad))


def test_the_walk_sees_every_kind_of_import(tmp_path):
    """The checker itself: nested, relative and importlib imports are all found and resolved."""
    package = tmp_path / "python" / "lwdvc" / "models"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    probe = package / "probe.py"
    probe.write_text(
        "import importlib\n"
        "from ..train import codec\n"
        "def later():\n"
        "    from lwdvc import cli\n"
        "    return importlib.import_module('lwdvc.eval.rd')\n")
    found = imports_of(probe, [tmp_path / "python"])
    assert {i.importer for i in found} == {"lwdvc.models.probe"}
    assert {"lwdvc.train", "lwdvc.train.codec", "lwdvc.cli", "lwdvc.eval.rd"} <= {i.module for i in found}
    offending = {i.line for i in found if breaks_rule(i.importer, i.module)}
    assert offending == {2, 4, 5}
    assert module_name(package / "__init__.py", [tmp_path / "python"]) == "lwdvc.models"


@pytest.mark.parametrize("importer,module,allowed", [
    ("lwdvc.models.zoo", "lwdvc.train.codec", False),
    ("lwdvc.models.zoo", "lwdvc.trainer", True),  # a prefix of a name is not the package
    ("lwdvc.prune.pruner", "lwdvc.distill", False),
    ("lwdvc.train.loop", "lwdvc.prune", True),
    ("lwdvc_kernels.ops", "lwdvc.metrics", False),
    ("lwdvc_kernels.ops", "lwdvc_kernels.nn", True),
])
def test_rules(importer, module, allowed):
    assert breaks_rule(importer, module) is not allowed
