"""The compiled tracking kernels against the NumPy / SciPy operations they replace."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from ovis_jax._src.metrics.tracking import kernels as K
from ovis_jax._src.metrics.tracking.hota import _sim_iou


def _frames(seed: int, count: int):
    """Random frame blocks (tracker-major), with zeros, exact ties and 1..40 a side."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        ng, nd = (int(x) for x in rng.integers(1, 41, 2))
        levels = rng.choice([0.0, 0.25, 0.5, 1 / 3, 0.7], size=ng * nd)
        block = np.where(rng.random(ng * nd) < 0.5, rng.random(ng * nd), levels)
        yield ng, nd, block


def test_hota_norm_is_numpy_bit_for_bit():
    for ng, nd, block in _frames(0, 400):
        norm = np.zeros_like(block)
        K.hota_norm(block, np.array([0, block.shape[0]]), np.array([0]), np.array([ng]),
                    np.array([nd]), norm)  # fmt: skip
        expected = _sim_iou(block.reshape(nd, ng).T).T.reshape(-1)
        assert np.array_equal(norm, expected), (ng, nd)


@pytest.mark.parametrize("seed", [1, 2])
def test_unique_argmax_agrees_with_linear_sum_assignment(seed):
    decided = 0
    for ng, nd, block in _frames(seed, 600):
        ng, nd = min(ng, 6), min(nd, 6)
        score = block[: ng * nd]
        rg, rd = np.zeros(ng, dtype=np.int64), np.zeros(ng, dtype=np.int64)
        k = K._unique_argmax(score, ng, nd, rg, rd)
        if k < 0:
            continue
        decided += 1
        mat = score.reshape(ng, nd)
        rows, cols = linear_sum_assignment(-mat)
        keep = mat[rows, cols] > 0
        ours = sorted(zip(rg[:k].tolist(), rd[:k].tolist(), strict=True))
        assert ours == sorted(zip(rows[keep].tolist(), cols[keep].tolist(), strict=True))
    assert decided > 20  # both outcomes occur: decided here, and left to SciPy
