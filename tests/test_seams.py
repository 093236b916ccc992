"""The seams: a new metric or a new backend plugs in with its own code and one registration."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

import ovis_jax
from ovis_jax._src.backends import base as backends
from ovis_jax._src.backends.cpu.backend import CpuBackend
from ovis_jax._src.metrics import base as metrics
from ovis_jax._src.metrics.ap.summary import format_metrics
from ovis_jax.testing import random_dataset


class _CountResults:
    """A toy metric: results and not-ignored ground-truth tracks per category, and the AP."""

    name = "count"

    def compute(self, ctx):
        ids = ctx.gt.category_ids
        return {
            "results": np.bincount(
                np.searchsorted(ids, ctx.results.category_id), minlength=len(ids)
            ),
            "gt": np.bincount(np.searchsorted(ids, ctx.gt.category_id), minlength=len(ids)),
            "ap": ctx.ap.stats["AP"],
        }

    def json_entries(self, value):
        return {"count": {k: np.asarray(v).tolist() for k, v in value.items()}}

    def format_text(self, value):
        return f"count: {int(value['results'].sum())} results"


@pytest.fixture
def toy_metric():
    metrics.register_metric("count", _CountResults)
    yield
    metrics._REGISTRY.pop("count")


def test_a_toy_metric_plugs_in_with_one_registration(toy_metric):
    gt, res = random_dataset(seed=4)
    out = ovis_jax.evaluate(gt, res, backend="cpu", metrics="ap,count")
    value = out.metrics["count"]
    loaded = ovis_jax.load_ground_truth(gt)
    kept = ovis_jax.load_results(res, loaded)
    assert value["results"].sum() == kept.score.shape[0]
    assert value["gt"].sum() == loaded.ann_id.shape[0]
    assert value["ap"] == out.stats["AP"]
    doc = json.loads(json.dumps(out.to_json()))
    assert doc["count"]["results"] == value["results"].tolist()
    assert format_metrics(out) == f"count: {kept.score.shape[0]} results"


def test_unknown_metric_and_backend_are_named():
    gt, res = random_dataset(seed=4)
    with pytest.raises(ValueError, match="unknown metric 'nope'"):
        ovis_jax.evaluate(gt, res, metrics=("nope",))
    with pytest.raises(ValueError, match="unknown backend 'nope'"):
        backends.get_backend("nope")


class _CountingCpu(CpuBackend):
    """A toy backend: the CPU stages, counting the pipeline's calls."""

    name = "counting"
    calls: ClassVar[list] = []

    def track_ious(self, gt, results, plan):
        self.calls.append("track_ious")
        return super().track_ious(gt, results, plan)


def test_a_toy_backend_plugs_in_with_one_registration():
    backends.register_backend("counting", _CountingCpu)
    try:
        gt, res = random_dataset(seed=5)
        got = ovis_jax.evaluate(gt, res, backend="counting")
        want = ovis_jax.evaluate(gt, res, backend="cpu")
    finally:
        backends._REGISTRY.pop("counting")
    assert got.backend == "counting" and _CountingCpu.calls == ["track_ious"]
    assert got.stats == want.stats
    np.testing.assert_array_equal(got.precision, want.precision)


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_every_backend_object_has_every_stage(backend):
    engine = backends.get_backend(backend)
    assert isinstance(engine, backends.Backend) and engine.name == backend


def _internal_imports() -> dict[str, set[str]]:
    """Module → the ovis_jax modules it imports (any level, function-level imports included)."""
    root = Path(ovis_jax.__file__).resolve().parent.parent
    mods = {}
    for p in sorted((root / "ovis_jax").rglob("*.py")):
        parts = p.relative_to(root).with_suffix("").parts
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    graph: dict[str, set[str]] = {}
    for name, p in mods.items():
        is_pkg = p.name == "__init__.py"
        out = set()
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    here = name.split(".") if is_pkg else name.split(".")[:-1]
                    here = here[: len(here) - node.level + 1]
                    base = ".".join([*here, base] if base else here)
                targets = [f"{base}.{a.name}" for a in node.names] + [base]
            else:
                continue
            for t in targets:
                while t and t not in mods:
                    t = t.rpartition(".")[0]
                if t and t != name and not name.startswith(t + "."):
                    out.add(t)
        graph[name] = out
    return graph


def test_no_import_circles():
    """The package's modules import each other without a circle (issue 16), counting the
    imports inside functions too."""
    graph = _internal_imports()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    circles = []

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                circles.append([*path[path.index(t) :], t])
            elif t not in state:
                visit(t, [*path, t])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert circles == []
