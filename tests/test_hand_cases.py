"""Hand-computed cases (TrackEval style): tiny inputs whose every summary number, and the
telling entries of the precision / recall arrays, are derived on paper from "The metric".

The cases and their derivations live in ``handcases.py``; each test here evaluates one case
with each backend and compares the numbers to the exact fractions to 1e-12.

Array axes: precision[T, R, K, A, O, M], recall[T, K, A, O, M]; T = IoU thresholds
0.5..0.95, R = recall points 0, 0.01, ..., 1, A = (all, small, medium, large),
O = (all, light, medium, heavy), M = maxDets (1, 10, 100).
"""

from __future__ import annotations

from fractions import Fraction as F

import handcases as hc
import numpy as np
import pytest

import ovis_jax
from ovis_jax._src.metrics.ap.summary import OVIS_KEYS, YTVIS_KEYS

TOL = 1e-12

# Axis indices.
ALL, SMALL, MEDIUM, LARGE = 0, 1, 2, 3  # area ranges
LIGHT, MEDIUM_OCC, HEAVY = 1, 2, 3  # occlusion ranges (0 is "all")
M1, M10, M100 = 0, 1, 2  # maxDets


@pytest.fixture(params=["reference", "jax"])
def backend(request) -> str:
    return request.param


# --------------------------------------------------------------------------------------------
# Helpers


def assert_close(actual, expected, what: str) -> None:
    """|actual - expected| <= 1e-12, printing both sides and the difference otherwise."""
    a, e = float(actual), float(expected)
    assert abs(a - e) <= TOL, (
        f"{what}: actual {a!r}, expected {e!r} (= {expected}), difference {a - e:+.3e}"
    )


def assert_array_close(actual: np.ndarray, expected, what: str) -> None:
    """Element-wise :func:`assert_close` of an array against a scalar or a same-shaped array,
    reporting the first mismatching indices."""
    actual = np.asarray(actual, dtype=np.float64)
    exp = np.broadcast_to(np.asarray(expected, dtype=np.float64), actual.shape)
    bad = np.argwhere(~(np.abs(actual - exp) <= TOL))
    if bad.size:
        shown = "; ".join(
            f"[{', '.join(map(str, idx))}]: actual {actual[tuple(idx)]!r}, "
            f"expected {exp[tuple(idx)]!r}, difference {actual[tuple(idx)] - exp[tuple(idx)]:+.3e}"
            for idx in bad[:5]
        )
        raise AssertionError(f"{what}: {len(bad)} of {actual.size} entries differ: {shown}")


def steps(*pieces: tuple[int, object]) -> list[float]:
    """A precision curve over the 101 recall points, as (number of points, value) pieces."""
    out: list[float] = []
    for n, value in pieces:
        out += [float(F(value))] * n
    assert len(out) == 101, f"pieces cover {len(out)} recall points, expected 101"
    return out


def check_stats(res, expected: dict[str, F], name: str) -> None:
    assert list(res.stats) == list(expected), (
        f"{name}: stats keys {list(res.stats)}, expected {list(expected)}"
    )
    errors = []
    for key, value in expected.items():
        try:
            assert_close(res.stats[key], value, f"{name}: {key}")
        except AssertionError as e:
            errors.append(str(e))
    assert not errors, "\n".join(errors)


def run(case: hc.HandCase, backend: str):
    """Evaluates a case and checks every summary number; returns the EvalResult."""
    res = ovis_jax.evaluate(case.gt, case.results, backend=backend)
    check_stats(res, case.stats, f"{case.name} [{backend}]")
    return res


def has_warning(res, *words: str) -> bool:
    return any(all(w.lower() in m.lower() for w in words) for m in res.warnings)


# --------------------------------------------------------------------------------------------
# Cases


def test_perfect_match(backend):
    res = run(hc.case_perfect_match(), backend)
    assert_array_close(res.precision[:, :, 0, ALL, 0, :], 1, "precision (all, every maxDet)")
    assert_array_close(res.recall[:, 0, ALL, 0, :], 1, "recall (all, every maxDet)")
    assert_array_close(res.precision[:, :, 0, MEDIUM], -1, "precision (medium area): undefined")
    assert_array_close(res.recall[:, 0, LARGE], -1, "recall (large area): undefined")
    assert_array_close(res.precision[:, :, 0, ALL, HEAVY], -1, "precision (heavy): undefined")


@pytest.mark.parametrize("tp_first", [False, True], ids=["fp_first", "tp_first"])
def test_score_tie_within_video(backend, tp_first):
    res = run(hc.case_score_tie_within_video(tp_first), backend)
    value = 1 if tp_first else F(1, 2)
    assert_array_close(res.precision[:, :, 0, ALL, 0, M100], value, "precision (all)")
    assert_array_close(res.recall[:, 0, ALL, 0, M1], 1 if tp_first else 0, "recall maxDet 1")


@pytest.mark.parametrize("tp_first_in_file", [True, False], ids=["tp_first", "fp_first"])
@pytest.mark.parametrize("tp_in_video", [1, 2], ids=["tp_video1", "tp_video2"])
def test_score_tie_across_videos(backend, tp_in_video, tp_first_in_file):
    res = run(hc.case_score_tie_across_videos(tp_in_video, tp_first_in_file), backend)
    value = 1 if tp_in_video == 1 else F(1, 2)
    expected = steps((51, value), (50, 0))
    for t in (0, 9):
        assert_array_close(res.precision[t, :, 0, ALL, 0, M100], expected, f"precision t={t}")
    assert_array_close(res.recall[:, 0, ALL, 0, :], F(1, 2), "recall")


def test_identical_ground_truths(backend):
    res = run(hc.case_identical_ground_truths(), backend)
    assert_array_close(
        res.precision[:, :, 0, ALL, 0, M100], steps((51, 1), (50, 0)), "precision (all)"
    )
    assert_array_close(res.precision[:, :, 0, SMALL, 0, M100], 1, "precision (small)")
    assert_array_close(res.precision[:, :, 0, MEDIUM, 0, M100], 1, "precision (medium)")
    assert_array_close(res.precision[:, :, 0, LARGE], -1, "precision (large): undefined")
    assert_array_close(res.recall[:, 0, SMALL, 0, M100], 1, "recall (small)")


@pytest.mark.parametrize("left_first", [True, False], ids=["left_first", "right_first"])
def test_equal_iou_tie_later_ground_truth_wins(backend, left_first):
    res = run(hc.case_equal_iou_tie(left_first), backend)
    p = res.precision[:, :, 0, ALL, 0, M100]
    at50 = steps((101, 1)) if left_first else steps((51, 1), (50, 0))
    assert_array_close(p[0], at50, "precision t=0.5")
    for t in range(1, 10):
        assert_array_close(p[t], steps((51, F(1, 2)), (50, 0)), f"precision t index {t}")
    r = res.recall[:, 0, ALL, 0, M100]
    assert_array_close(r, [1 if left_first else 0.5] + [0.5] * 9, "recall maxDet 100")
    assert_array_close(res.recall[:, 0, ALL, 0, M1], [0.5] + [0] * 9, "recall maxDet 1")


@pytest.mark.parametrize("iscrowd", [1, 0], ids=["crowd", "not_crowd"])
def test_crowd_absorbs_results(backend, iscrowd):
    res = run(hc.case_crowd(iscrowd), backend)
    p = res.precision[:, :, 0, ALL, 0, M100]
    if iscrowd:
        assert_array_close(p[0], 1, "precision t=0.5 (two results absorbed by the crowd)")
        assert_array_close(p[1:], F(1, 2), "precision t>0.5 (IoU 0.5 result is now an FP)")
        assert_array_close(res.recall[:, 0, ALL, 0, M1], 0, "recall maxDet 1 (absorbed)")
    else:
        assert_array_close(p, steps((51, 1), (50, F(2, 3))), "precision")
        assert_array_close(res.recall[:, 0, ALL, 0, M1], F(1, 2), "recall maxDet 1")
    assert_array_close(res.recall[:, 0, ALL, 0, M100], 1, "recall maxDet 100")


def test_area_boundaries(backend):
    res = run(hc.case_area_boundaries(), backend)
    for a, value in ((ALL, F(2, 3)), (SMALL, F(1, 2)), (MEDIUM, F(2, 3)), (LARGE, 1)):
        assert_array_close(res.precision[:, :, 0, a, 0, M100], value, f"precision area {a}")
        assert_array_close(res.recall[:, 0, a, 0, :], 1, f"recall area {a}")


def test_occlusion_boundaries(backend):
    res = run(hc.case_occlusion_boundaries(), backend)
    p = res.precision[:, :, 0, ALL, :, M100]
    assert_array_close(p[:, :, 0], steps((51, 1), (50, F(2, 3))), "precision occlusion all")
    assert_array_close(p[:, :, LIGHT], F(1, 2), "precision light (0.25 on the boundary)")
    assert_array_close(
        p[:, :, MEDIUM_OCC], steps((51, 1), (50, F(2, 3))), "precision medium (0.25 and 0.5)"
    )
    assert_array_close(p[:, :, HEAVY], 1, "precision heavy (0.5 on the boundary)")
    assert_array_close(res.recall[:, 0, ALL, :, M100], 1, "recall every occlusion range")


def test_null_and_empty_frames(backend):
    res = run(hc.case_null_and_empty_frames(), backend)
    p = res.precision[:, :, 0, ALL, 0, M100]
    assert_array_close(p[0], 1, "precision t=0.5 (IoUs 0.6 and 0.5)")
    assert_array_close(p[1:3], steps((51, 1), (50, 0)), "precision t=0.55, 0.6 (0.6 only)")
    assert_array_close(p[3:], 0, "precision t>=0.65")
    assert_array_close(
        res.recall[:, 0, ALL, 0, M100], [1, 0.5, 0.5] + [0] * 7, "recall per threshold"
    )


@pytest.mark.parametrize("variant", ["rank100", "rank101", "tied100", "tied101", "per_video"])
def test_only_top_100_results_per_video(backend, variant):
    res = run(hc.case_top_100(variant), backend)
    value = {"rank100": F(1, 100), "tied100": F(1, 100), "per_video": F(1, 121)}.get(variant, 0)
    assert_array_close(res.precision[:, :, 0, ALL, 0, M100], value, "precision maxDet 100")
    found = 0 if variant in ("rank101", "tied101") else 1
    assert_array_close(res.recall[:, 0, ALL, 0, M100], found, "recall maxDet 100")
    assert_array_close(res.precision[:, :, 0, ALL, 0, M10], 0, "precision maxDet 10")


def test_categories_without_ground_truth_and_videos_without_results(backend):
    res = run(hc.case_missing_categories_and_videos(), backend)
    assert res.category_ids.tolist() == [1, 2, 3, 4]
    assert_array_close(
        res.precision[:, :, 0, ALL, 0, M100], steps((51, 1), (50, 0)), "category 1 precision"
    )
    assert_array_close(res.recall[:, 0, ALL, 0, :], F(1, 2), "category 1 recall")
    for k, why in ((1, "results, no ground truth"), (2, "nothing"), (3, "only a crowd")):
        assert_array_close(res.precision[:, :, k], -1, f"category {k + 1} precision ({why})")
        assert_array_close(res.recall[:, k], -1, f"category {k + 1} recall ({why})")
    rows = {r["id"]: r for r in res.per_category}
    assert_close(rows[1]["AP"], F(51, 101), "per-category AP of category 1")
    for cid in (2, 3, 4):
        assert rows[cid]["AP"] == -1 and rows[cid]["AR100"] == -1, rows[cid]
    assert has_warning(res, "99"), res.warnings


@pytest.mark.parametrize("form", ["polygon", "uncompressed"])
def test_polygon_and_uncompressed_ground_truth(backend, form):
    res = run(hc.case_segmentation_forms(form), backend)
    base = run(hc.case_segmentation_forms("compressed"), backend)
    p = res.precision[:, :, 0, ALL, 0, M100]
    assert_array_close(p[:6], 1, "precision t<=0.75")
    assert_array_close(p[6:], steps((51, 1), (50, 0)), "precision t>=0.8")
    assert np.array_equal(res.precision, base.precision), "precision differs from compressed"
    assert np.array_equal(res.recall, base.recall), "recall differs from compressed"


def test_segmentation_form_helpers_rasterise_as_documented():
    """The polygons and the uncompressed RLE of handcases decode to the masks they claim."""
    from pycocotools import mask as mask_utils

    for poly, mask in ((hc.POLY1, hc.POLY1_MASK), (hc.POLY2, hc.POLY2_MASK)):
        decoded = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(poly, 10, 10)))
        assert np.array_equal(decoded, mask), poly
    q = hc.rect(0, 10, 0, 4)
    assert hc.uncompressed_rle(q)["counts"] == [0, 40, 60]
    r = hc.uncompressed_rle(hc.rect(2, 8, 0, 4))
    assert r["counts"] == [2, 6, 4, 6, 4, 6, 4, 6, 62]


def test_ytvis_format_without_occlusion_labels(backend):
    res = run(hc.case_ytvis_format(False), backend)
    assert res.format == "ytvis"
    assert tuple(res.stats) == YTVIS_KEYS and len(res.stats) == 12
    assert res.precision.shape == (10, 101, 1, 4, 1, 3)
    assert res.recall.shape == (10, 1, 4, 1, 3)
    assert_array_close(res.precision[:, :, 0, ALL, 0, M100], steps((51, 1), (50, F(2, 3))), "p")
    ovis = run(hc.case_ytvis_format(True), backend)
    assert ovis.format == "ovis" and tuple(ovis.stats) == OVIS_KEYS
    assert ovis.precision.shape == (10, 101, 1, 4, 4, 3)
    for key in YTVIS_KEYS:
        assert_close(res.stats[key], ovis.stats[key], f"{key}: ytvis vs ovis labels")


def test_empty_results_list(backend):
    res = run(hc.case_empty_results(), backend)
    assert_array_close(res.precision[:, :, 0, ALL, 0, :], 0, "precision with ground truth")
    assert_array_close(res.recall[:, 0, ALL, 0, :], 0, "recall with ground truth")
    assert_array_close(res.precision[:, :, 1], -1, "precision, category without ground truth")
    assert_array_close(res.recall[:, 1], -1, "recall, category without ground truth")
    assert has_warning(res, "empty"), res.warnings


def test_all_null_occlusion_track(backend):
    res = run(hc.case_all_null_occlusion(), backend)
    assert has_warning(res, "occlusion"), res.warnings
    p = res.precision[:, :, 0, ALL, :, M100]
    assert_array_close(p[:, :, LIGHT], 1, "precision light (occlusion score 0.0)")
    assert_array_close(p[:, :, MEDIUM_OCC], -1, "precision medium occlusion")
    assert_array_close(p[:, :, HEAVY], 0, "precision heavy")


@pytest.mark.parametrize("with_areas", [False, True], ids=["missing", "given"])
def test_ground_truth_areas_from_masks(backend, with_areas):
    res = run(hc.case_areas_from_masks(with_areas), backend)
    assert has_warning(res, "areas") != with_areas, res.warnings
    assert_array_close(res.precision[:, :, 0, MEDIUM, 0, M100], 1, "precision medium")
    assert_array_close(res.precision[:, :, 0, LARGE], -1, "precision large")


def test_ground_truth_id_zero_still_matches(backend):
    res = run(hc.case_ground_truth_id_zero(), backend)
    assert_array_close(res.precision[:, :, 0, ALL, 0, :], 1, "precision")
    assert_array_close(res.recall[:, 0, ALL, 0, :], 1, "recall")


def test_max_dets_1_10_100(backend):
    res = run(hc.case_max_dets(), backend)
    p = res.precision[:, :, 0, ALL, 0, :]
    half, q, two11 = F(1, 2), F(1, 4), F(2, 11)
    expected = {
        M1: steps((34, half), (67, 0)),
        M10: steps((34, half), (33, two11), (34, 0)),
        M100: steps((34, half), (67, q)),
    }
    for m, curve in expected.items():
        assert_array_close(p[:, :, m], curve, f"precision maxDet index {m}")
    for m, ap in ((M1, F(17, 101)), (M10, F(23, 101)), (M100, F(135, 404))):
        assert_close(p[:, :, m].mean(), ap, f"AP at maxDet index {m}")
    for m, rec in ((M1, F(1, 3)), (M10, F(2, 3)), (M100, 1)):
        assert_array_close(res.recall[:, 0, ALL, 0, m], rec, f"recall maxDet index {m}")


def test_iou_threshold_edges(backend):
    res = run(hc.case_iou_threshold_edges(), backend)
    for k, (cat, px, n_matched) in enumerate(hc.IOU_EDGES):
        for t in range(10):
            value = 1 if t < n_matched else 0
            what = f"category {cat} (IoU {px}/100), threshold index {t}"
            assert_array_close(res.precision[t, :, k, ALL, 0, M100], value, "precision " + what)
            assert_array_close(res.recall[t, k, ALL, 0, M100], value, "recall " + what)
