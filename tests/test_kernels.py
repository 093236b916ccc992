"""Kernel-level tests: intersections / IoU, matching, accumulation, size 0, jit, retrace, x64."""

from __future__ import annotations

import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import count_compiles
from pycocotools import mask as mask_utils

import ovis_jax
from ovis_jax._src.backends.jax.accumulation import accumulate
from ovis_jax._src.backends.jax.backend import pair_frames
from ovis_jax._src.backends.jax.device_rle import device_pair_intersections
from ovis_jax._src.backends.jax.iou import RunTable, track_ious
from ovis_jax._src.backends.jax.matching import match_groups
from ovis_jax._src.backends.reference import greedy_match, track_iou
from ovis_jax.testing import synthetic

logging.getLogger("ovis_jax").setLevel(logging.ERROR)


def _all_pairs(gt: ovis_jax.GroundTruth, res: ovis_jax.Results):
    pairs = [
        (d, g)
        for d in range(res.video_id.shape[0])
        for g in range(gt.video_id.shape[0])
        if res.video_id[d] == gt.video_id[g]
    ]
    return np.array([p[0] for p in pairs], np.int64), np.array([p[1] for p in pairs], np.int64)


def rle_intersections(res_masks, gt_masks, pd, pg):
    """The JAX backend's intersections: pair-frames pruned on the host, bytes to the device."""
    pair, sd, sg = pair_frames(res_masks, gt_masks, pd, pg)
    return device_pair_intersections(
        res_masks.chars, res_masks.char_start, gt_masks.chars, gt_masks.char_start, sd, sg,
        pair, pd.shape[0],
    )  # fmt: skip


def _pycocotools_intersections(res, gt, pd, pg) -> list[int]:
    """Per pair, the sum over frames of pycocotools' intersection areas."""
    return [
        sum(
            int(mask_utils.area(mask_utils.merge([a, b], intersect=True)))
            for a, b in zip(res.rles[d], gt.rles[g], strict=True)
            if a is not None and b is not None
        )
        for d, g in zip(pd, pg, strict=True)
    ]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_pair_ious_equal_pycocotools_per_frame(seed):
    gt_dict, results = synthetic.random_dataset(seed=seed, num_videos=3)
    gt = ovis_jax.load_ground_truth(gt_dict)
    res = ovis_jax.load_results(results, gt)
    pd, pg = _all_pairs(gt, res)
    with jax.enable_x64(True):
        inter = rle_intersections(res.masks, gt.masks, pd, pg)
        area_d = res.masks.track_areas()[pd]
        area_g = gt.masks.track_areas()[pg]
        ious = np.asarray(track_ious(inter, area_d, area_g))
    expected_inter = _pycocotools_intersections(res, gt, pd, pg)
    np.testing.assert_array_equal(inter, expected_inter)
    expected = np.array([track_iou(res.rles[d], gt.rles[g]) for d, g in zip(pd, pg, strict=True)])
    np.testing.assert_array_equal(ious, expected)  # bit-identical float64


def test_realistic_masks_intersections():
    """Fragmented, many-run masks at video resolution, both query directions exercised."""
    gt_dict, results = synthetic.ovis_like(
        seed=1,
        num_videos=2,
        num_categories=3,
        frames=4,
        sizes=((120, 200),),
        predictions_per_video=10,
    )
    gt = ovis_jax.load_ground_truth(gt_dict)
    res = ovis_jax.load_results(results, gt)
    pd, pg = _all_pairs(gt, res)
    with jax.enable_x64(True):
        inter = rle_intersections(res.masks, gt.masks, pd, pg)
    expected = _pycocotools_intersections(res, gt, pd, pg)
    np.testing.assert_array_equal(inter, expected)
    assert np.count_nonzero(inter) > 0


def test_size_zero_kernels():
    gt_dict, _ = synthetic.random_dataset(seed=0, num_videos=1)
    gt = ovis_jax.load_ground_truth(gt_dict)
    empty = ovis_jax.load_results([], gt)
    none = np.zeros(0, np.int64)
    with jax.enable_x64(True):
        assert rle_intersections(empty.masks, gt.masks, none, none).shape == (0,)
        assert np.asarray(track_ious(none, none, none)).shape == (0,)
    m, ig = match_groups(
        jnp.zeros((2, 0, 3)),
        jnp.ones((2, 3), bool),
        jnp.zeros((2, 3), bool),
        jnp.zeros((2, 4, 4, 3), bool),
        jnp.zeros((2, 0), bool),
        jnp.zeros((2, 4, 0), bool),
        jnp.asarray(np.linspace(0.5, 0.95, 10)),
    )
    assert m.shape == ig.shape == (2, 0, 10, 4, 4)
    m, ig = match_groups(
        jnp.zeros((2, 3, 0)),
        jnp.ones((2, 0), bool),
        jnp.zeros((2, 0), bool),
        jnp.zeros((2, 4, 4, 0), bool),
        jnp.ones((2, 3), bool),
        jnp.zeros((2, 4, 3), bool),
        jnp.asarray(np.linspace(0.5, 0.95, 10)),
    )
    assert not np.asarray(m).any()
    # Accumulation with no results at all: 0 where ground truth exists, -1 elsewhere.
    with jax.enable_x64(True):
        p, r, s = accumulate(
            jnp.zeros(0, jnp.int32),
            jnp.zeros(0),
            jnp.zeros(0, jnp.int32),
            jnp.zeros(0, jnp.int32),
            jnp.zeros((0, 10, 4, 1), bool),
            jnp.zeros((0, 10, 4, 1), bool),
            jnp.asarray(np.array([[[1]] * 4, [[0]] * 4])),
            jnp.asarray(np.array([1, 10, 100], np.int32)),
            jnp.asarray(np.linspace(0, 1, 101)),
            num_categories=2,
        )
    p, r = np.asarray(p), np.asarray(r)
    assert (p[:, :, 0] == 0).all() and (r[:, 0] == 0).all()
    assert (p[:, :, 1] == -1).all() and (r[:, 1] == -1).all()
    s = np.asarray(s)
    assert (s[:, :, 0] == 0).all() and (s[:, :, 1] == -1).all()


def test_evaluate_size_zero():
    gt_dict, results = synthetic.random_dataset(seed=3, num_videos=2)
    for backend in ("reference", "jax"):
        res = ovis_jax.evaluate(gt_dict, [], backend=backend)
        assert res.stats["AP"] in (0.0, -1.0)
        no_gt = dict(gt_dict, annotations=[])
        out = ovis_jax.evaluate(no_gt, results, backend=backend)
        assert all(v == -1.0 for v in out.stats.values())
        assert (out.precision == -1).all()


@pytest.mark.parametrize("seed", range(6))
def test_matching_equals_the_walk_and_is_one_to_one(seed, jit_mode):
    """match_groups (jitted and eager) vs the reference's literal walk, on random IoUs with many
    exact ties."""
    rng = np.random.default_rng(seed)
    p, d, g = 5, 9, 6
    ious = rng.choice([0.0, 0.5, 0.55, 0.7, 0.75, 0.9, 1.0, 0.6 + 1e-17], size=(p, d, g))
    gt_valid = rng.random((p, g)) < 0.9
    crowd = rng.random((p, g)) < 0.2
    ignore = (rng.random((p, 4, 4, g)) < 0.3) | crowd[:, None, None, :]
    dt_valid = np.arange(d)[None, :] < rng.integers(0, d + 1, size=(p, 1))
    area_out = rng.random((p, 4, d)) < 0.3
    thr = np.linspace(0.5, 0.95, 10)
    with jax.enable_x64(True):
        m, ig = match_groups(
            jnp.asarray(ious),
            jnp.asarray(gt_valid),
            jnp.asarray(crowd),
            jnp.asarray(ignore),
            jnp.asarray(dt_valid),
            jnp.asarray(area_out),
            jnp.asarray(thr),
        )
    m, ig = np.asarray(m), np.asarray(ig)
    for pi in range(p):
        gs = np.flatnonzero(gt_valid[pi])
        nd = int(dt_valid[pi].sum())
        for a in range(4):
            for o in range(4):
                ign = ignore[pi, a, o, gs].tolist()
                cr = crowd[pi, gs].tolist()
                for t in range(10):
                    walk = greedy_match(ious[pi][:nd][:, gs], ign, cr, float(thr[t]))
                    exp_m = [w is not None for w in walk]
                    exp_ig = [
                        ign[w] if w is not None else bool(area_out[pi, a, i])
                        for i, w in enumerate(walk)
                    ]
                    assert m[pi, :nd, t, a, o].tolist() == exp_m, (pi, a, o, t)
                    assert ig[pi, :nd, t, a, o].tolist() == exp_ig, (pi, a, o, t)
                    taken = [w for w in walk if w is not None and not cr[w]]
                    assert len(taken) == len(set(taken))  # one-to-one except crowds
                    assert not m[pi, nd:].any()


def _accumulation_case():
    """Random inputs of :func:`accumulate`: 40 results, 3 categories, 5 videos, with ties."""
    rng = np.random.default_rng(4)
    n, k = 40, 3
    category = rng.integers(0, k + 1, n).astype(np.int32)  # k: padding
    video = rng.integers(0, 5, n).astype(np.int32)
    score = rng.choice([0.1, 0.5, 0.5, 0.9, 0.3], n)
    rank = np.zeros(n, np.int32)
    for key in {(c, v) for c, v in zip(category, video, strict=True)}:
        rows = np.flatnonzero((category == key[0]) & (video == key[1]))
        rank[rows[np.argsort(-score[rows], kind="stable")]] = np.arange(rows.size)
    matched = rng.random((n, 10, 4, 1)) < 0.5
    ignored = ~matched & (rng.random((n, 10, 4, 1)) < 0.2)
    npig = rng.integers(0, 6, (k, 4, 1))
    args = (category, score, video, rank, matched, ignored, npig)
    fixed = (np.array([1, 10, 100], np.int32), np.linspace(0, 1, 101))
    return tuple(jnp.asarray(a) for a in args + fixed)


@pytest.fixture(scope="module")
def jitted_accumulation():
    """The jitted accumulation of :func:`_accumulation_case` (computed outside any no-jit)."""
    with jax.enable_x64(True):
        out = accumulate(*_accumulation_case(), num_categories=3)
    return tuple(np.asarray(x) for x in out)


def test_accumulation_jit_and_eager_agree(jitted_accumulation, jit_mode):
    """precision, recall and scores, bit for bit."""
    with jax.enable_x64(True):
        out = accumulate(*_accumulation_case(), num_categories=3)
    assert len(out) == len(jitted_accumulation) == 3
    for got, want in zip(out, jitted_accumulation, strict=True):
        np.testing.assert_array_equal(np.asarray(got), want)
    p = np.asarray(out[0])
    assert (((p >= 0) & (p <= 1)) | (p == -1)).all() and (p >= 0).any()


def test_no_retrace_on_same_shaped_input_and_x64_untouched():

    assert not jax.config.jax_enable_x64
    gt_dict, results = synthetic.random_dataset(seed=12)
    ovis_jax.evaluate(gt_dict, results, backend="jax")
    kernels = {"match_groups", "accumulate", "_prepare", "_intersect_chunk", "track_ious"}
    # Same data again: no kernel compiles again.
    with count_compiles() as again:
        ovis_jax.evaluate(gt_dict, results, backend="jax")
    assert not kernels & set(again.names), again.names
    assert not jax.config.jax_enable_x64
    assert jnp.zeros(1).dtype == jnp.float32
    assert jnp.arange(3).dtype == jnp.int32


@pytest.mark.parametrize("seed", [0, 5, 9])
def test_decoded_areas_and_runs_equal_pycocotools(seed):
    """Per-frame pixel counts and foreground runs from the bulk decoder vs pycocotools."""
    gt_dict, results = synthetic.random_dataset(seed=seed)
    gt = ovis_jax.load_ground_truth(gt_dict)
    res = ovis_jax.load_results(results, gt)
    for loaded in (gt, res):
        frames = [f for track in loaded.rles for f in track]
        expected = [int(mask_utils.area(f)) if f is not None else 0 for f in frames]
        np.testing.assert_array_equal(loaded.masks.area, expected)
        runs = RunTable.from_masks(loaded.masks)
        for i, f in enumerate(frames):
            if f is None:
                continue
            flat = mask_utils.decode(f).flatten(order="F")
            got = np.zeros(flat.shape[0], dtype=np.uint8)
            for s, e in zip(
                runs.start[runs.frame_first[i] : runs.frame_first[i + 1]],
                runs.end[runs.frame_first[i] : runs.frame_first[i + 1]],
                strict=True,
            ):
                got[s:e] = 1
            np.testing.assert_array_equal(got, flat, err_msg=f"frame {i}")
