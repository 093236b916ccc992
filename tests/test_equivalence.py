"""Every backend == the reference evaluator on seeded random datasets (all numbers, 1e-12)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

import ovis_jax
from ovis_jax.testing import assert_results_equal, synthetic

NUM_DATASETS = 300
TOL = 1e-12


def assert_same_matches(ref: ovis_jax.Matches, got: ovis_jax.Matches, what: str) -> None:
    """Every field of every per-result record equal (IoUs exactly: the same float64 division
    of the same integers); on failure print the first differing record of both sides."""
    for field in ref._fields:
        a, b = getattr(ref, field), getattr(got, field)
        assert a.shape == b.shape, f"{what}: matches.{field} shape {a.shape} vs {b.shape}"
        same = (a == b) | (np.isnan(a) & np.isnan(b)) if a.dtype.kind == "f" else a == b
        bad = np.flatnonzero(~same.reshape(a.shape[0], int(np.prod(a.shape[1:]))).all(axis=1))
        if bad.size:
            i = int(bad[0])
            raise AssertionError(
                f"{what}: matches.{field} differs for {bad.size} results; first, result {i}: "
                f"reference {[f[i] for f in ref]} got {[f[i] for f in got]}"
            )


#: Length ranges inside the random datasets' 1 to 12 frames (the defaults would put every
#: track in "short"), with boundaries on whole frames.
SWEEP_PARAMS = ovis_jax.EvalParams(length_ranges=(("a", 0, 3), ("b", 4, 6), ("c", 7, 1e10)))


#: Seeds run by the quick inner loop (``-m "not slow"``); the others are marked slow.
QUICK_SEEDS = (0,)


SEEDS = [
    pytest.param(s, marks=() if s in QUICK_SEEDS else pytest.mark.slow) for s in range(NUM_DATASETS)
]


@pytest.mark.parametrize("seed", SEEDS)
def test_random_dataset(seed: int) -> None:
    """All numbers and arrays (with the track-length pass) and the per-result matches."""
    logging.getLogger("ovis_jax").setLevel(logging.ERROR)
    gt_dict, results = synthetic.random_dataset(seed=seed, unknown_categories=seed % 7 == 0)
    gt = ovis_jax.load_ground_truth(gt_dict)
    res = ovis_jax.load_results(results, gt)
    options = {"params": SWEEP_PARAMS, "matches": True}
    ref = ovis_jax.evaluate(gt, res, backend="reference", **options)
    assert ref.matches.result.tolist() == list(range(len(results)))
    for backend in ("cpu", "jax"):
        got = ovis_jax.evaluate(gt, res, backend=backend, **options)
        assert got.backend == backend
        what = f"seed {seed} ({gt.format}, {len(results)} results, {backend})"
        assert_results_equal(ref, got, what=what)
        assert got.length_stats == pytest.approx(ref.length_stats, abs=TOL, rel=0), what
        assert_same_matches(ref.matches, got.matches, what)


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
