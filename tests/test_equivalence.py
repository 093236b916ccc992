"""Every backend == the reference evaluator on seeded random datasets (all numbers, 1e-12)."""

from __future__ import annotations

import logging

import pytest
from conftest import assert_results_equal

import ovis_jax
from ovis_jax._src import synthetic

NUM_DATASETS = 300


#: Seeds run by the quick inner loop (``-m "not slow"``); the others are marked slow.
QUICK_SEEDS = (0,)


SEEDS = [
    pytest.param(s, marks=() if s in QUICK_SEEDS else pytest.mark.slow) for s in range(NUM_DATASETS)
]


@pytest.mark.parametrize("seed", SEEDS)
def test_random_dataset(seed: int) -> None:
    logging.getLogger("ovis_jax").setLevel(logging.ERROR)
    gt_dict, results = synthetic.random_dataset(seed=seed, unknown_categories=seed % 7 == 0)
    gt = ovis_jax.load_ground_truth(gt_dict)
    res = ovis_jax.load_results(results, gt)
    ref = ovis_jax.evaluate(gt, res, backend="reference")
    for backend in ("cpu", "jax"):
        got = ovis_jax.evaluate(gt, res, backend=backend)
        assert got.backend == backend
        what = f"seed {seed} ({gt.format}, {len(results)} results, {backend})"
        assert_results_equal(ref, got, what=what)


@pytest.mark.parametrize("occlusion", [True, pytest.param(False, marks=pytest.mark.slow)])
def test_ovis_like_sample(occlusion: bool) -> None:
    """Realistic masks (fragmented by occlusion, many runs per frame) at small sizes."""
    gt_dict, results = synthetic.ovis_like(
        seed=5,
        num_videos=6,
        num_categories=4,
        frames=8,
        sizes=((60, 100), (90, 160)),
        predictions_per_video=12,
        occlusion=occlusion,
    )
    gt = ovis_jax.load_ground_truth(gt_dict)
    res = ovis_jax.load_results(results, gt)
    ref = ovis_jax.evaluate(gt, res, backend="reference")
    for backend in ("cpu", "jax"):
        got = ovis_jax.evaluate(gt, res, backend=backend)
        assert_results_equal(ref, got, what=f"ovis_like occlusion={occlusion} {backend}")
