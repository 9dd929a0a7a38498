"""The op table (lwdvc_kernels.ops.registry) is the one declaration of every op: the compiled
schemas, the registered kernels and the functional API all agree with it."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from lwdvc_kernels import ops
from lwdvc_kernels.ops.registry import OPS, check_backend, op_spec

ROOT = Path(__file__).resolve().parents[2]
needs_extension = pytest.mark.skipif(ops.EXTENSION is None, reason="needs the compiled extension")
SPEC_IDS = [spec.name for spec in OPS]


def parsed(schema: str) -> str:
    """The dispatcher's spelling of a table schema."""
    return str(torch._C.parse_schema(f"lwdvc::{schema}"))


def schemas_in_csrc() -> dict[str, str]:
    """{op name: schema} of every ``m.def("...")`` in csrc/ops/*.cpp (adjacent literals joined)."""
    found = {}
    for path in sorted((ROOT / "csrc" / "ops").glob("*.cpp")):
        for call in re.findall(r"m\.def\(\s*((?:\"[^\"]*\"\s*)+)\)", path.read_text()):
            schema = "".join(re.findall(r"\"([^\"]*)\"", call))
            found[schema.split("(", 1)[0]] = schema
    return found


def test_names_are_unique_and_every_registered_op_is_in_the_table():
    assert len(SPEC_IDS) == len(set(SPEC_IDS))
    registered = {name.split("::", 1)[1] for name in torch._C._dispatch_get_all_op_names()
                  if name.startswith("lwdvc::")}
    assert registered == set(SPEC_IDS)


def test_csrc_defines_exactly_the_table_schemas():
    csrc = schemas_in_csrc()
    assert set(csrc) == set(SPEC_IDS)
    for spec in OPS:
        assert parsed(csrc[spec.name]) == parsed(spec.schema), spec.name


@needs_extension
@pytest.mark.parametrize("name", SPEC_IDS)
def test_compiled_schema_equals_the_table(name):
    compiled = getattr(torch.ops.lwdvc, name).default._schema
    assert str(compiled) == parsed(op_spec(name).schema)


@pytest.mark.parametrize("name", SPEC_IDS)
def test_every_op_has_its_kernels_fake_and_autograd(name):
    spec = op_spec(name)
    qualname = f"lwdvc::{name}"
    has = torch._C._dispatch_has_kernel_for_dispatch_key
    assert has(qualname, "Meta"), "fake kernel"
    for device in spec.devices:
        assert has(qualname, device.upper()), device
    assert has(qualname, "Autograd") == spec.differentiable


@pytest.mark.parametrize("name", [spec.name for spec in OPS if spec.backends])
def test_ops_with_backends_have_a_functional_api_that_checks_the_name(name):
    assert callable(getattr(ops, name))
    for backend in op_spec(name).backends:
        assert check_backend(name, backend) == backend
    with pytest.raises(ValueError, match=rf"{name}: unknown backend 'fast'; expected one of"):
        check_backend(name, "fast")


def test_an_unknown_op_is_named():
    with pytest.raises(KeyError, match="no lwdvc op named 'conv3d'"):
        op_spec("conv3d")
