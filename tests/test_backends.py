"""Backend choice: ``auto`` resolution, the names reported, unknown names refused."""

from __future__ import annotations

import pytest

import ovis_jax
from ovis_jax._src import evaluation
from ovis_jax.testing import synthetic


def test_auto_is_cpu_without_an_accelerator(monkeypatch):
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    assert not evaluation.accelerator_present()
    gt_dict, results = synthetic.random_dataset(seed=1)
    result = ovis_jax.evaluate(gt_dict, results)
    assert result.backend == "cpu"
    assert set(result.timings) >= {"load_gt", "load_results", "intersections", "accumulation"}
    assert all(v >= 0 for v in result.timings.values())


def test_auto_picks_jax_only_for_large_data_on_an_accelerator(monkeypatch):
    gt = ovis_jax.load_ground_truth(synthetic.random_dataset(seed=1)[0])
    res = ovis_jax.load_results(synthetic.random_dataset(seed=1)[1], gt)
    monkeypatch.setattr(evaluation, "accelerator_present", lambda: True)
    assert evaluation.resolve_backend("auto", gt, res) == "cpu"  # a few bytes: not worth it
    monkeypatch.setattr(evaluation, "AUTO_DEVICE_MIN_BYTES", 0)
    assert evaluation.resolve_backend("auto", gt, res) == "jax"
    assert evaluation.resolve_backend("reference", gt, res) == "reference"


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="unknown backend 'gpu'"):
        ovis_jax.evaluate({}, [], backend="gpu")
