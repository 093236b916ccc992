"""Every shape written in the docstrings of the array modules uses the one legend's letters."""

from __future__ import annotations

import ast
import importlib
import inspect
import re

import pytest

from ovis_jax._src.legend import LEGEND

MODULES = (
    "backends.jax.accumulation",
    "backends.cpu.kernels",
    "backends.jax.device_rle",
    "backends.grouping",
    "backends.jax.iou",
    "backends.jax.backend",
    "backends.jax.matching",
    "masks.rle",
    "io.segjson",
    "streaming.evaluator",
    "streaming.core",
    "streaming.state",
    "streaming.tables",
)
_SHAPE = re.compile(r"\b(?:bool|u?int(?:8|32|64)?|float(?:32|64)?)\[([^\]]*)\]")
# A legend letter (optionally with a side suffix d / g, optionally ``+ 1``), a literal size,
# ``...``, or a static argument's name.
_AXIS = re.compile(r"^(?:([A-Z])[dg]?(?: \+ 1)?|\d+|\.\.\.|[a-z_]+)$")


def _docstrings(module) -> list[str]:
    tree = ast.parse(inspect.getsource(module))
    nodes = [tree] + [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef)]
    return [d for d in (ast.get_docstring(n) for n in nodes) if d]


def test_legend_letters_are_distinct_capitals():
    assert all(len(k) == 1 and k.isupper() for k in LEGEND)
    assert len(set(LEGEND)) == len(LEGEND)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_shapes_use_the_legend(name):
    module = importlib.import_module(f"ovis_jax._src.{name}")
    bad = []
    for doc in _docstrings(module):
        for shape in _SHAPE.findall(doc):
            for axis in shape.split(","):
                m = _AXIS.match(axis.strip())
                if not m or (m.group(1) and m.group(1) not in LEGEND):
                    bad.append(f"[{shape}] ({axis.strip()!r})")
    assert not bad, f"{name}: shapes outside the legend: {bad}"
