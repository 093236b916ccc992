"""The seams: a new metric or a new backend plugs in with its own code and one registration."""

from __future__ import annotations

import json
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
