"""Compact accumulation: the same numbers as the official arrays, arrays on request or on
first read, and a clear refusal when they cannot fit."""

from __future__ import annotations

import numpy as np
import pytest

import ovis_jax
from ovis_jax._src.errors import ResourceError
from ovis_jax.testing import synthetic

BACKENDS = ("cpu", "jax", "reference")


@pytest.mark.parametrize(
    "backend", ["cpu", pytest.param("jax", marks=pytest.mark.slow), "reference"]
)
@pytest.mark.parametrize("seed", [0, pytest.param(5, marks=pytest.mark.slow)])
def test_compact_equals_official_arrays(backend, seed):
    gt, res = synthetic.random_dataset(seed=seed)
    groups = {"first": [gt["categories"][0]["id"]]}
    compact = ovis_jax.evaluate(gt, res, backend=backend, groups=groups)
    full = ovis_jax.evaluate(gt, res, backend=backend, groups=groups, arrays=True)
    assert full.arrays_ready and not compact.arrays_ready
    assert compact.stats == full.stats  # bit for bit
    assert compact.length_stats == full.length_stats
    assert compact.per_category == full.per_category
    assert compact.groups == full.groups
    assert compact.curves.precision.size < full.curves.precision.size
    assert full.curves.layout.is_full
    for name in ("precision", "recall", "scores", "length_precision", "length_recall"):
        np.testing.assert_array_equal(getattr(compact, name), getattr(full, name), err_msg=name)
    assert compact.arrays_ready  # computed once, on first read


def test_many_categories_without_ground_truth_stay_small():
    gt, res = synthetic.random_dataset(seed=3, num_videos=3, num_categories=4, occlusion=False)
    gt["categories"] = list(gt["categories"]) + [
        {"id": 10_000 + i, "name": f"extra{i}"} for i in range(20_000)
    ]
    out = ovis_jax.evaluate(gt, res, backend="cpu")
    assert out.curves.precision.nbytes < 1 << 20  # full precision would be 1.9 GB
    rows = out.per_category
    assert len(rows) == 20_004 and rows[-1]["AP"] == -1


def test_arrays_that_cannot_fit_are_refused(monkeypatch):
    gt, res = synthetic.random_dataset(seed=1)
    monkeypatch.setenv("OVIS_JAX_MEMORY_LIMIT", "1000")
    with pytest.raises(ResourceError, match=r"would need .* more than the 1000 bytes available"):
        ovis_jax.evaluate(gt, res, backend="cpu", arrays=True)
    with pytest.raises(MemoryError, match="no --arrays"):
        ovis_jax.evaluate(gt, res, backend="cpu", arrays=True)
    monkeypatch.setenv("OVIS_JAX_MEMORY_LIMIT", "1e7")
    out = ovis_jax.evaluate(gt, res, backend="cpu")  # compact fits
    monkeypatch.setenv("OVIS_JAX_MEMORY_LIMIT", "1000")
    with pytest.raises(ValueError, match="official precision / recall / scores arrays"):
        out.precision  # noqa: B018 (the lazy arrays are checked too)
