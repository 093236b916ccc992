"""TIVE-style error analysis: cases whose labels and dAPs are derived by hand, and a seeded sweep
where the uncorrected AP50 equals ``evaluate``'s bit for bit and both backends agree exactly.

Hand cases use 10x10 frames (``A`` top-left 5x5, ``B`` bottom-right, ``D`` bottom-left:
pairwise disjoint) and the AP arithmetic of ``handcases.py``: with G not-ignored ground truths
and the ranked list, ``rc = tp/G``, ``pr = tp/(tp+fp)``, the envelope, and 101 recall points. The
recurring numbers:

- FP then TP, G = 2: precision 1/2 at r <= 0.5 (51 points), 0 after: AP = 51/202.
- FP then TP, G = 1: precision 1/2 everywhere: AP = 1/2.
- TP, TP, G = 2 or TP, G = 1: AP = 1.  TP, G = 2: AP = 51/101.
- TP, FP, TP, G = 2: 1 at r <= 0.5 (51 points), 2/3 after (50): AP = (51 + 100/3)/101 = 253/303.
- FP, FP, TP, G = 2: 1/3 at r <= 0.5: AP = 17/101.
"""

from __future__ import annotations

import logging
from fractions import Fraction as F

import handcases as hc
import numpy as np
import pytest

import ovis_jax
from ovis_jax._src.backends.base import get_backend
from ovis_jax._src.metrics import tive as EA
from ovis_jax._src.metrics.tive import (
    ERROR_TYPES,
    ErrorAnalysis,
    analyze_errors,
    format_errors,
)
from ovis_jax.testing.synthetic import ovis_like, random_dataset

A, B, D = hc.A, hc.B, hc.D
SHRUNK = hc.rect(0, 2, 0, 5)  # 10 px inside A: IoU 10/25 = 0.4 in every frame
L = 10  # frames per video in the hand cases
TOL = 1e-12  # the eps of the precision formula moves values by ~1e-16


def _load(gt: dict, results: list):
    gt_ = ovis_jax.load_ground_truth(gt)
    return gt_, ovis_jax.load_results(results, gt_)


def _analyze(gt: dict, results: list, backend: str = "cpu") -> ErrorAnalysis:
    return analyze_errors(*_load(gt, results), backend=backend)


def _check(got: ErrorAnalysis, ap50, errors: dict, counts: dict) -> None:
    """``errors`` and ``counts`` list the nonzero entries; every other one must be 0."""
    want_e = {k: F(errors.get(k, 0)) for k in ERROR_TYPES}
    want_c = {k: counts.get(k, 0) for k in ERROR_TYPES}
    bad = [k for k in ERROR_TYPES if abs(got.errors[k] - float(want_e[k])) > TOL]
    msg = (
        f"ap50 {got.ap50!r} (want {ap50} = {float(F(ap50))!r})\n"
        f"errors got  {got.errors}\nerrors want { ({k: float(v) for k, v in want_e.items()}) }\n"
        f"counts got  {got.counts}\ncounts want {want_c}"
    )
    assert abs(got.ap50 - float(F(ap50))) <= TOL, msg
    assert not bad, f"differ: {bad}\n{msg}"
    assert got.counts == want_c, msg
    assert list(got.errors) == list(ERROR_TYPES) == list(got.counts), msg


def _frames(mask, n_present: int = L) -> list:
    return [mask if t < n_present else None for t in range(L)]


def _gt(tracks: list, categories=(1,), ytvis: bool = False) -> dict:
    anns = [
        hc.track(i + 1, vid, frames, category_id=cat, occlusion=None if ytvis else "no_occlusion")
        for i, (vid, cat, frames) in enumerate(tracks)
    ]
    return hc.gt_file([hc.video(1, L), hc.video(2, L)], anns, categories)


# --------------------------------------------------------------------------------------------
# Known answers by construction


def test_identical_predictions_have_no_errors() -> None:
    """Every result is a copy of its ground truth: AP50 = 1 and every fix changes nothing."""
    gt = _gt([(1, 1, _frames(A)), (1, 2, _frames(B)), (2, 1, _frames(D, 3))], categories=(1, 2))
    results = [
        hc.result(1, _frames(A), 0.9),
        hc.result(1, _frames(B), 0.8, category_id=2),
        hc.result(2, _frames(D, 3), 0.7),
    ]
    got = _analyze(gt, results)
    _check(got, 1, {}, {})
    assert all(v == 0.0 for v in got.errors.values()), got.errors  # exactly, not just 1e-12


def test_wrong_category_is_classification() -> None:
    """A (cat 1) predicted as cat 2 at 0.9, B (cat 2) found at 0.8. Cat 1: no result, AP 0;
    cat 2: FP then TP, G = 1, AP 1/2: AP50 = 1/4. Fixing the class moves the result to cat 1 as
    a TP (cat 1 AP 1, cat 2 AP 1): +3/4. Removing the FP leaves cat 1 at 0: +1/4. Perfect
    recall leaves cat 1 with no ground truth and no result (out of the mean): +1/4."""
    gt = _gt([(1, 1, _frames(A)), (1, 2, _frames(B))], categories=(1, 2))
    results = [
        hc.result(1, _frames(A), 0.9, category_id=2),
        hc.result(1, _frames(B), 0.8, category_id=2),
    ]
    _check(
        _analyze(gt, results),
        F(1, 4),
        {"classification": F(3, 4), "false_positive": F(1, 4), "false_negative": F(1, 4)},
        {"classification": 1, "false_positive": 1, "false_negative": 1},
    )


def test_high_scored_duplicate() -> None:
    """A found twice (0.9, 0.8) above B (0.7): TP, FP, TP, AP 253/303; without the duplicate
    AP 1: +50/303."""
    gt = _gt([(1, 1, _frames(A)), (1, 1, _frames(B))])
    results = [
        hc.result(1, _frames(A), 0.9),
        hc.result(1, _frames(A), 0.8),
        hc.result(1, _frames(B), 0.7),
    ]
    _check(
        _analyze(gt, results),
        F(253, 303),
        {"duplicate": F(50, 303), "false_positive": F(50, 303)},
        {"duplicate": 1, "false_positive": 1},
    )


@pytest.mark.parametrize("ytvis", [False, True])
def test_first_30_percent_of_frames_is_temporal(ytvis: bool) -> None:
    """A predicted in 3 of its 10 frames (IoU 75/250 = 0.3; temporal overlap 3/10 < 0.7) at
    0.9, B found at 0.5: FP, TP, AP 51/202. The fix makes it a TP: AP 1 (+151/202). Without
    the FP: TP, G = 2, 51/101 (+51/202). Perfect recall: FP, TP, G = 1: 1/2 (+25/101)."""
    gt = _gt([(1, 1, _frames(A)), (1, 1, _frames(B))], ytvis=ytvis)
    results = [hc.result(1, _frames(A, 3), 0.9), hc.result(1, _frames(B), 0.5)]
    got = _analyze(gt, results)
    _check(
        got,
        F(51, 202),
        {"temporal": F(151, 202), "false_positive": F(51, 202), "false_negative": F(25, 101)},
        {"temporal": 1, "false_positive": 1, "false_negative": 1},
    )


def test_spatially_shrunk_is_spatial() -> None:
    """A shrunk to 10 of its 25 pixels in every frame (IoU 0.4, overlap 1): as the temporal
    case, with the error spatial."""
    gt = _gt([(1, 1, _frames(A)), (1, 1, _frames(B))])
    results = [hc.result(1, _frames(SHRUNK), 0.9), hc.result(1, _frames(B), 0.5)]
    _check(
        _analyze(gt, results),
        F(51, 202),
        {"spatial": F(151, 202), "false_positive": F(51, 202), "false_negative": F(25, 101)},
        {"spatial": 1, "false_positive": 1, "false_negative": 1},
    )


def test_far_from_everything_is_background() -> None:
    """D (disjoint from every ground truth) at 0.9, B found at 0.5: FP, TP, G = 1: AP 1/2;
    without it AP 1."""
    gt = _gt([(1, 1, _frames(B))])
    results = [hc.result(1, _frames(D), 0.9), hc.result(1, _frames(B), 0.5)]
    _check(
        _analyze(gt, results),
        F(1, 2),
        {"background": F(1, 2), "false_positive": F(1, 2)},
        {"background": 1, "false_positive": 1},
    )


def test_result_in_video_without_ground_truth_is_background() -> None:
    """A result in video 2, which has no ground truth: background (TIVE's first check)."""
    gt = _gt([(1, 1, _frames(B))])
    results = [hc.result(2, _frames(B), 0.9), hc.result(1, _frames(B), 0.5)]
    _check(
        _analyze(gt, results),
        F(1, 2),
        {"background": F(1, 2), "false_positive": F(1, 2)},
        {"background": 1, "false_positive": 1},
    )


def test_wrong_category_and_poor_overlap_is_both_and_leaves_a_miss() -> None:
    """SHRUNK (IoU 0.4 with A of cat 1) predicted as cat 2 at 0.9, B (cat 2) found at 0.5.
    Cat 1 AP 0, cat 2 FP then TP: 1/2; AP50 1/4. "both" refers to no ground truth, so A is
    missed. Removing the "both" result: cat 2 AP 1 (+1/4). Removing the miss leaves cat 1
    with neither ground truth nor result (out of the mean): 1/2 (+1/4)."""
    gt = _gt([(1, 1, _frames(A)), (1, 2, _frames(B))], categories=(1, 2))
    results = [
        hc.result(1, _frames(SHRUNK), 0.9, category_id=2),
        hc.result(1, _frames(B), 0.5, category_id=2),
    ]
    quarter = F(1, 4)
    _check(
        _analyze(gt, results),
        quarter,
        {"both": quarter, "missed": quarter, "false_positive": quarter, "false_negative": quarter},
        {"both": 1, "missed": 1, "false_positive": 1, "false_negative": 1},
    )


def test_only_the_best_scored_error_per_ground_truth_becomes_a_true_positive() -> None:
    """Two shrunk copies of A (0.9, 0.8) and B (0.7): FP, FP, TP, AP 17/101. Fixing spatial
    errors turns the 0.9 one into A's TP and removes the 0.8 one (TIDE's BestGTMatch): AP 1
    (+84/101). Without the FPs: TP, G = 2, 51/101 (+34/101). Perfect recall: FP, FP, TP,
    G = 1: 1/3 everywhere (+50/303)."""
    gt = _gt([(1, 1, _frames(A)), (1, 1, _frames(B))])
    results = [
        hc.result(1, _frames(SHRUNK), 0.9),
        hc.result(1, _frames(SHRUNK), 0.8),
        hc.result(1, _frames(B), 0.7),
    ]
    _check(
        _analyze(gt, results),
        F(17, 101),
        {"spatial": F(84, 101), "false_positive": F(34, 101), "false_negative": F(50, 303)},
        {"spatial": 2, "false_positive": 2, "false_negative": 1},
    )


def test_poor_overlap_with_a_matched_ground_truth_is_spatial_and_only_removed() -> None:
    """A found (0.9), a shrunk A (0.8) and B (0.7): TP, FP, TP, AP 253/303. The shrunk one is
    spatial on an already matched ground truth: its fix removes it (+50/303)."""
    gt = _gt([(1, 1, _frames(A)), (1, 1, _frames(B))])
    results = [
        hc.result(1, _frames(A), 0.9),
        hc.result(1, _frames(SHRUNK), 0.8),
        hc.result(1, _frames(B), 0.7),
    ]
    _check(
        _analyze(gt, results),
        F(253, 303),
        {"spatial": F(50, 303), "false_positive": F(50, 303)},
        {"spatial": 1, "false_positive": 1},
    )


def test_crowd_absorbs_results_and_is_never_missed() -> None:
    """A crowd A absorbs a copy of it (ignored, not an error); B found: AP 1, no errors."""
    gt = _gt([(1, 1, _frames(B))])
    gt["annotations"].append(hc.track(9, 1, _frames(A), iscrowd=1))
    results = [hc.result(1, _frames(A), 0.9), hc.result(1, _frames(B), 0.5)]
    _check(_analyze(gt, results), 1, {}, {})


def test_no_results_everything_is_missed() -> None:
    """No results: AP50 0; each ground truth is missed, and fixing the misses leaves no
    category to average, so every dAP is 0."""
    gt = _gt([(1, 1, _frames(A)), (2, 1, _frames(B))])
    _check(_analyze(gt, []), 0, {}, {"missed": 2, "false_negative": 2})


# --------------------------------------------------------------------------------------------
# Exactness and backend agreement


def _sweep_inputs():
    for seed in (0, 3, 7, 11, 19, 42):
        yield f"random_{seed}", random_dataset(seed=seed)
    yield "random_unknown_cats", random_dataset(seed=5, unknown_categories=True)
    gt, res = ovis_like(seed=1, num_videos=3, num_categories=4, frames=6, sizes=((24, 32),))
    yield "ovis_like", (gt, res)
    gt_y, res_y = ovis_like(
        seed=2, num_videos=3, num_categories=4, frames=6, sizes=((24, 32),), occlusion=False
    )
    yield "ovis_like_ytvis", (gt_y, res_y)
    yield "empty_results", (gt, [])
    extra = dict(gt, videos=[*gt["videos"], dict(gt["videos"][0], id=999)])
    moved = [dict(r, video_id=999) for r in res[::3]]
    yield "video_without_ground_truth", (extra, res + moved)


@pytest.mark.parametrize("name,data", list(_sweep_inputs()), ids=lambda x: x)
def test_sweep_ap50_exact_and_backends_agree(name, data) -> None:
    logging.getLogger("ovis_jax").setLevel(logging.ERROR)
    gt, res = _load(*data)
    official = ovis_jax.evaluate(gt, res, backend="cpu").stats["AP50"]
    cpu = analyze_errors(gt, res, backend="cpu")
    ref = analyze_errors(gt, res, backend="reference")
    assert cpu.ap50 == official, f"{name}: ap50 {cpu.ap50!r} vs evaluate's AP50 {official!r}"
    assert cpu == ref, f"{name}:\n cpu       {cpu}\n reference {ref}"
    assert all(v >= 0 for v in cpu.errors.values()), f"{name}: negative dAP {cpu.errors}"
    assert (
        cpu.counts["false_positive"]
        == sum(
            cpu.counts[k] for k in ("classification", "duplicate", "spatial", "temporal", "both")
        )
        + cpu.counts["background"]
    ), f"{name}: {cpu.counts}"
    assert cpu.counts["missed"] <= cpu.counts["false_negative"], f"{name}: {cpu.counts}"


# --------------------------------------------------------------------------------------------
# Output


def test_to_json_and_format() -> None:
    gt = _gt([(1, 1, _frames(B))])
    got = _analyze(gt, [hc.result(1, _frames(D), 0.9), hc.result(1, _frames(B), 0.5)])
    doc = got.to_json()
    assert doc == {"AP50": got.ap50, "errors": got.errors, "counts": got.counts}
    assert all(type(v) is float for v in doc["errors"].values())
    text = format_errors(got)
    for name in ERROR_TYPES:
        assert name in text, text
    assert "0.5000" in text, text  # AP50 and the background dAP


def test_unknown_backend_is_rejected() -> None:
    gt = _gt([(1, 1, _frames(B))])
    with pytest.raises(ValueError, match="backend"):
        analyze_errors(*_load(gt, []), backend="gpu")


def test_inputs_are_not_modified() -> None:
    gt_, res_ = _load(_gt([(1, 1, _frames(A))]), [hc.result(1, _frames(SHRUNK), 0.9)])
    before = (gt_.masks.frame_start.copy(), res_.score.copy(), res_.masks.frame_start.copy())
    analyze_errors(gt_, res_)
    after = (gt_.masks.frame_start, res_.score, res_.masks.frame_start)
    assert all(np.array_equal(x, y) for x, y in zip(before, after, strict=True))


# --------------------------------------------------------------------------------------------
# The oracles agree with the evaluator run on the fixed files


def _fixed_files(gt_doc: dict, res_doc: list, name: str, label, ref, winner, kept) -> list:
    """The results file after the oracle of ``name``: removed results dropped, each winning
    result given its ground truth's masks and category (a sure match)."""
    code = {v: k for k, v in EA._LABEL_NAMES.items()}
    anns = gt_doc["annotations"]
    out = list(res_doc)
    drop = set()
    for i in range(label.shape[0]):
        d = int(kept.track[i])
        hit = label[i] >= EA._BKG if name == "false_positive" else label[i] == code[name]
        if hit:
            if name in ("classification", "spatial", "temporal") and winner[i]:
                g = anns[int(ref[i])]
                out[d] = dict(
                    out[d], category_id=g["category_id"], segmentations=g["segmentations"]
                )
            else:
                drop.add(d)
    return [r for j, r in enumerate(out) if j not in drop]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fixes_equal_evaluating_the_fixed_file(seed: int) -> None:
    """``AP50 + dAP`` equals ``evaluate``'s AP50 on the files fixed by hand: results removed or
    turned into copies of their ground truth, missed ground truths removed (realistic data: no
    duplicated ground truths, < 100 results per pair)."""
    logging.getLogger("ovis_jax").setLevel(logging.ERROR)
    gt_doc, res_doc = ovis_like(
        seed=seed, num_videos=4, num_categories=3, frames=6, sizes=((24, 32),),
        predictions_per_video=10,
    )  # fmt: skip
    gt, res = _load(gt_doc, res_doc)
    got = analyze_errors(gt, res)
    kept = EA._kept(gt, res, ovis_jax.EvalParams())
    videos = EA._videos(gt, res, kept, get_backend("cpu"))
    matched = EA._match(videos, kept, get_backend("cpu"))
    label, ref = EA._labels(videos, kept, matched, res, gt, get_backend("cpu"))
    used = np.zeros(gt.ann_id.shape[0], dtype=bool)
    used[matched[matched >= 0]] = True
    winner, _ = EA._fixers(kept, label, ref, used)
    names = ("classification", "duplicate", "spatial", "temporal", "both", "background")
    for name in (*names, "false_positive"):
        fixed = _fixed_files(gt_doc, res_doc, name, label, ref, winner, kept)
        want = ovis_jax.evaluate(gt_doc, fixed, backend="cpu").stats["AP50"]
        have = got.ap50 + got.errors[name]
        assert abs(have - want) <= TOL, f"seed {seed} {name}: {have!r} vs evaluated {want!r}"
    # Ground-truth side: drop the missed / unmatched tracks from the ground-truth file (no
    # category loses all of its tracks here, so the official mean runs over the same ones).
    unmatched = ~used & ~gt.iscrowd
    _, usable = EA._fixers(kept, label, ref, used)
    for name, gone in (("missed", unmatched & ~usable), ("false_negative", unmatched)):
        left = set(gt.category_id[~gone & ~gt.iscrowd].tolist())
        assert left == set(gt.category_id.tolist()), f"seed {seed}: a category emptied"
        anns = [a for a, g in zip(gt_doc["annotations"], gone, strict=True) if not g]
        want = ovis_jax.evaluate(dict(gt_doc, annotations=anns), res_doc).stats["AP50"]
        have = got.ap50 + got.errors[name]
        assert abs(have - want) <= TOL, f"seed {seed} {name}: {have!r} vs evaluated {want!r}"
