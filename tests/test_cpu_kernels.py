"""The compiled CPU kernels (numba): decoding + validation, intersections, matching, against
pycocotools and the reference; size 0; jitted vs pure Python; no recompilation."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import numpy as np
import pytest
from pycocotools import mask as mask_utils

import ovis_jax
from ovis_jax._src.backends.cpu import kernels as K
from ovis_jax._src.backends.grouping import group_tracks
from ovis_jax._src.backends.reference import greedy_match, track_iou
from ovis_jax._src.masks import scan as S
from ovis_jax._src.similarity.cpu import pair_ious
from ovis_jax.testing import synthetic

logging.getLogger("ovis_jax").setLevel(logging.ERROR)


def _buffer(strings: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    chars = np.frombuffer(bytearray(b"".join(strings)), dtype=np.uint8)  # writable, as loading
    start = np.zeros(len(strings) + 1, dtype=np.int64)
    np.cumsum([len(s) for s in strings], out=start[1:])
    return chars, start


def _scan(strings: list[bytes], fn=S.scan_strings) -> dict[str, np.ndarray]:
    chars, start = _buffer(strings)
    n = len(strings)
    out = {k: np.zeros(n, np.int64) for k in ("totals", "areas", "firsts", "lasts", "nvals")}
    codes = np.zeros(n, np.int8)
    fn(chars, start, 0, n, codes, *out.values())
    return {"codes": codes, **out}


def _random_masks(rng, count: int) -> list[np.ndarray]:
    shapes = [(1, 1), (1, 37), (37, 1), (7, 5), (64, 48), (300, 400)]
    masks = []
    for i in range(count):
        h, w = shapes[i % len(shapes)]
        kind = rng.integers(4)
        if kind == 0:
            m = np.zeros((h, w), bool)
        elif kind == 1:
            m = np.ones((h, w), bool)
        else:
            m = rng.random((h, w)) < rng.uniform(0.05, 0.95)
            if kind == 3:  # big blobs: values needing several characters
                m[:] = False
                m[h // 4 : h - h // 5, w // 3 :] = True
        masks.append(m)
    return masks


def _encode(m: np.ndarray) -> bytes:
    return mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))["counts"]


@pytest.mark.parametrize("seed", [0, 1])
def test_scan_equals_pycocotools(seed):
    rng = np.random.default_rng(seed)
    masks = _random_masks(rng, 60)
    got = _scan([_encode(m) for m in masks])
    assert (got["codes"] == S.OK).all()
    for i, m in enumerate(masks):
        flat = m.flatten(order="F")
        fg = np.flatnonzero(flat)
        assert got["totals"][i] == m.size
        assert got["areas"][i] == fg.size == int(mask_utils.area(mask_utils.encode(
            np.asfortranarray(m.astype(np.uint8)))))  # fmt: skip
        span = (fg[0], fg[-1] + 1) if fg.size else (0, 0)
        assert (got["firsts"][i], got["lasts"][i]) == span, f"mask {i}"


def test_scan_size_zero_and_empty_string():
    got = _scan([])
    assert all(v.shape == (0,) for v in got.values())
    got = _scan([b""])  # no values at all: sums to 0, the caller then rejects the size
    assert got["codes"].tolist() == [S.OK] and got["totals"].tolist() == [0]


@pytest.mark.parametrize(
    ("string", "code"),
    [
        (b"3 1", S.BAD_CHAR),  # ' ' is below '0'
        (b"3p", S.BAD_CHAR),  # 'p' is above 'o'
        (b"0`", S.TRUNCATED),  # '`' = 48 + 48 sets the continuation bit and the string ends
        (b"````````0", S.TOO_LONG),  # 9 characters for one value
        (b"@", S.NEGATIVE),  # "@" = 48 + 16: the sign bit alone, value -32
    ],
)
def test_scan_flags_malformed_strings(string, code):
    assert _scan([b"1", string, b"1"])["codes"].tolist() == [S.OK, code, S.OK]


def test_scan_jitted_equals_pure_python():
    rng = np.random.default_rng(3)
    strings = [_encode(m) for m in _random_masks(rng, 12)] + [b"3p", b"0`"]
    a, b = _scan(strings), _scan(strings, S.scan_strings.py_func)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_pair_ious_equal_pycocotools(seed):
    gt_dict, results = synthetic.random_dataset(seed=seed, num_videos=3)
    gt = ovis_jax.load_ground_truth(gt_dict)
    res = ovis_jax.load_results(results, gt)
    groups = group_tracks(gt, res.video_id, res.category_id, res.score, max_det=100)
    ious = pair_ious(res.masks, gt.masks, groups)
    pair_d, pair_g = groups.pairs()
    expected = [track_iou(res.rles[d], gt.rles[g]) for d, g in zip(pair_d, pair_g, strict=True)]
    np.testing.assert_array_equal(ious, expected)  # bit-identical float64


def test_pair_ious_realistic_masks():
    """Fragmented, many-run masks at video resolution."""
    gt_dict, results = synthetic.ovis_like(
        seed=1, num_videos=2, num_categories=3, frames=4, sizes=((120, 200),),
        predictions_per_video=10,
    )  # fmt: skip
    gt = ovis_jax.load_ground_truth(gt_dict)
    res = ovis_jax.load_results(results, gt)
    groups = group_tracks(gt, res.video_id, res.category_id, res.score, max_det=100)
    assert groups.pair_start[-1] > 0
    pair_d, pair_g = groups.pairs()
    expected = [track_iou(res.rles[d], gt.rles[g]) for d, g in zip(pair_d, pair_g, strict=True)]
    np.testing.assert_array_equal(pair_ious(res.masks, gt.masks, groups), expected)


def _match_one(ious, ignore, crowd, threshold):
    """match_groups on one group, one range: the matched ground truth of each result."""
    n_d, n_g = ious.shape
    matched = np.zeros((n_d, 1, 1, 1), bool)
    ignored = np.zeros((n_d, 1, 1, 1), bool)
    K.match_groups(
        ious.ravel(), np.array([0, n_d * n_g]), np.array([0, n_d]), np.array([0, n_g]),
        np.asarray(ignore).reshape(n_g, 1, 1), np.asarray(crowd), np.zeros((n_d, 1), bool),
        np.array([threshold]), 0, 1, matched, ignored, np.empty((0, 1, 1, 1), np.int64),
    )  # fmt: skip
    return matched[:, 0, 0, 0], ignored[:, 0, 0, 0]


@pytest.mark.parametrize("seed", range(40))
def test_matching_equals_the_literal_walk(seed):
    """Random IoUs full of exact ties (including ties at the threshold), crowds, ignores."""
    rng = np.random.default_rng(seed)
    n_d, n_g = int(rng.integers(0, 7)), int(rng.integers(0, 7))
    ious = rng.choice([0.0, 0.3, 0.5, 0.5, 0.7, 1.0], size=(n_d, n_g))
    ignore = rng.random(n_g) < 0.3
    crowd = ignore & (rng.random(n_g) < 0.5)
    for t in (0.5, 0.7, 0.95):
        want = greedy_match(ious, ignore.tolist(), crowd.tolist(), t)
        matched, ignored = _match_one(ious, ignore, crowd, t)
        assert matched.tolist() == [m is not None for m in want]
        assert ignored.tolist() == [m is not None and bool(ignore[m]) for m in want]


def test_no_recompilation_across_sizes():
    """Inputs of other sizes, from files or parsed objects, reuse the compiled kernels."""
    kernels = (S.scan_strings, K.group_intersections, K.match_groups, K.accumulate)
    ovis_jax.evaluate(*synthetic.random_dataset(seed=0), backend="cpu")
    before = [len(k.signatures) for k in kernels]
    for n in (1, 5, 40):
        rng = np.random.default_rng(n)
        _scan([_encode(m) for m in _random_masks(rng, n)])
    for seed in (1, 2):
        ovis_jax.evaluate(*synthetic.random_dataset(seed=seed), backend="cpu")
    assert [len(k.signatures) for k in kernels] == before


def test_pure_python_backend_equals_compiled(tmp_path):
    """The whole CPU backend with numba's JIT disabled (plain Python) gives the same numbers."""
    gt_dict, results = synthetic.random_dataset(seed=4, num_videos=3)
    gt_path, res_path = tmp_path / "gt.json", tmp_path / "res.json"
    gt_path.write_text(json.dumps(gt_dict))
    res_path.write_text(json.dumps(results))
    code = (
        "import json, sys, ovis_jax; r = ovis_jax.evaluate(sys.argv[1], sys.argv[2], "
        "backend='cpu'); print(json.dumps([r.stats, r.precision.tolist()]))"
    )
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", code, str(gt_path), str(res_path)],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    stats, precision = json.loads(proc.stdout)
    compiled = ovis_jax.evaluate(gt_dict, results, backend="cpu")
    assert stats == compiled.stats
    np.testing.assert_array_equal(np.asarray(precision), compiled.precision)
