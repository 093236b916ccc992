"""The analysis outputs: AP by track length, per-result matches, full arrays, plots, and the
plumbing of the error analysis (API and CLI, both formats).

Expected values are derived by hand (fractions), or are equalities with another computation
(the reference backend, the official numbers, ``analyze_errors`` called directly).
"""

from __future__ import annotations

import json
import logging
from fractions import Fraction as F

import handcases as hc
import numpy as np
import pytest

import ovis_jax
from ovis_jax._src.cli import eval as cli
from ovis_jax._src.metrics import plots
from ovis_jax._src.metrics.ap.summary import OVIS_KEYS, YTVIS_KEYS
from ovis_jax._src.metrics.matches import matches_lines
from ovis_jax._src.metrics.tive import analyze_errors, format_errors
from ovis_jax.testing import synthetic

BACKENDS = ("reference", "cpu", "jax")
TOL = 1e-12
A, B = hc.rect(0, 5, 0, 5), hc.rect(5, 10, 5, 10)  # disjoint 5x5 squares
C, D = hc.rect(0, 5, 5, 10), hc.rect(5, 10, 0, 5)
N_FRAMES = 40


def _present(mask, n: int) -> list:
    """A track present (``mask``) on the first n frames of the video, absent after."""
    return [mask if t < n else None for t in range(N_FRAMES)]


def length_case(ovis: bool) -> tuple[dict, list]:
    """One video of 40 frames. Ground truth (category 1): track 11 on 16 frames (short),
    12 on 17 frames (medium), 13 on 33 frames (long). Results: a false positive of 20 frames
    (medium) overlapping nothing (score 0.95), exact copies of 11 (0.9) and 12 (0.8), and one
    result of category 7, which is not in the ground truth (0.5).

    By length range (IoUs are 1 or 0, so every threshold is alike):

    - short: only 11 counts; the 20-frame false positive is unmatched and outside the range
      (ignored), copy 11 is a TP, copy 12 matches the ignored 12 (ignored). tp = [0, 1, 1],
      fp = 0: precision 1 everywhere: AP 1, AR 1.
    - medium: only 12 counts; the false positive counts (in range), copy 11 matches the ignored
      11 (ignored), copy 12 is a TP. pr = [0, 0, 1/2], envelope 1/2 everywhere, rc = [0, 0, 1]:
      AP 1/2, AR 1.
    - long: only 13 counts; every result is ignored (outside the range or matched to an
      ignored ground truth): AP 0, AR 0.
    - very long (OVIS only, 97+ frames): no ground truth: -1.
    """
    occ = "no_occlusion" if ovis else None
    gt = hc.gt_file(
        [hc.video(1, N_FRAMES)],
        [
            hc.track(11, 1, _present(A, 16), occlusion=occ),
            hc.track(12, 1, _present(B, 17), occlusion=occ),
            hc.track(13, 1, _present(C, 33), occlusion=occ),
        ],
    )
    results = [
        hc.result(1, _present(D, 20), 0.95),
        hc.result(1, _present(A, 16), 0.9),
        hc.result(1, _present(B, 17), 0.8),
        hc.result(1, _present(A, 16), 0.5, category_id=7),
    ]
    return gt, results


def _close(got: float, want, what: str) -> None:
    assert abs(got - float(want)) <= TOL, f"{what}: got {got!r}, expected {want} = {float(want)!r}"


@pytest.mark.parametrize("ovis", [True, False])
@pytest.mark.parametrize("backend", BACKENDS)
def test_ap_by_track_length_hand_case(backend: str, ovis: bool) -> None:
    logging.getLogger("ovis_jax").setLevel(logging.ERROR)
    gt, results = length_case(ovis)
    res = ovis_jax.evaluate(gt, results, backend=backend)
    expected = {"short": (1, 1), "medium": (F(1, 2), 1), "long": (0, 0)}
    if ovis:
        expected["very_long"] = (-1, -1)
    assert [name for name, _, _ in res.length_ranges] == list(expected)
    assert list(res.length_stats) == [f"{k}_{n}" for k in ("AP", "AR") for n in expected]
    for name, (ap, ar) in expected.items():
        _close(res.length_stats[f"AP_{name}"], ap, f"{backend} AP_{name}")
        _close(res.length_stats[f"AR_{name}"], ar, f"{backend} AR_{name}")
    # The 18 / 12 official numbers are those of an evaluation without the length pass.
    plain = ovis_jax.evaluate(gt, results, backend=backend, lengths=False)
    assert res.stats == plain.stats
    assert list(res.stats) == list(OVIS_KEYS if ovis else YTVIS_KEYS)
    assert plain.length_stats == {} and plain.length_precision is None


def test_length_boundaries_are_whole_frames() -> None:
    """TIVE's bins (<= 16, (16, 32], > 32; OVIS also cuts at 96) as inclusive frame counts."""
    p = ovis_jax.EvalParams()
    assert p.for_lengths("ytvis").area_ranges == (
        ("short", 0, 16), ("medium", 17, 32), ("long", 33, 1e10)
    )  # fmt: skip
    assert p.for_lengths("ovis").area_ranges == (
        ("short", 0, 16), ("medium", 17, 32), ("long", 33, 96), ("very_long", 97, 1e10)
    )  # fmt: skip
    assert p.for_lengths("ovis").occlusion_ranges == (("all", 0.0, 1.0),)


@pytest.mark.parametrize("seed", [2, 5, 11])
def test_one_length_range_covering_everything_is_the_official_ap(seed: int) -> None:
    logging.getLogger("ovis_jax").setLevel(logging.ERROR)
    gt, results = synthetic.random_dataset(seed=seed)
    params = ovis_jax.EvalParams(length_ranges=(("any", 0.0, 1e10),))
    for backend in ("reference", "cpu"):
        res = ovis_jax.evaluate(gt, results, backend=backend, params=params)
        assert res.length_stats["AP_any"] == res.stats["AP"], backend
        assert res.length_stats["AR_any"] == res.stats["AR100"], backend
        np.testing.assert_array_equal(
            res.length_precision[:, :, :, 0, 0], res.precision[:, :, :, 0, 0]
        )


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 3])
def test_length_pass_on_ovis_like_tracks(seed: int) -> None:
    """Realistic tracks whose lengths span every default range: the backends agree."""
    logging.getLogger("ovis_jax").setLevel(logging.ERROR)
    g, r = synthetic.ovis_like(seed=seed, num_videos=4, num_categories=3, frames=(10, 110),
                               sizes=((24, 40),), predictions_per_video=8)  # fmt: skip
    gt = ovis_jax.load_ground_truth(g)
    res = ovis_jax.load_results(r, gt)
    lengths = gt.masks.track_lengths()
    assert lengths.min() <= 16 and lengths.max() >= 33, lengths
    ref = ovis_jax.evaluate(gt, res, backend="reference")
    for backend in ("cpu", "jax"):
        got = ovis_jax.evaluate(gt, res, backend=backend)
        for name in ("length_precision", "length_recall", "scores"):
            a, b = getattr(ref, name), getattr(got, name)
            assert np.abs(a - b).max() <= TOL, (backend, name, np.abs(a - b).max())


@pytest.mark.parametrize("backend", BACKENDS)
def test_matches_hand_case(backend: str) -> None:
    logging.getLogger("ovis_jax").setLevel(logging.ERROR)
    gt, results = length_case(ovis=True)
    m = ovis_jax.evaluate(gt, results, backend=backend, matches=True).matches
    lines = [json.loads(line) for line in matches_lines(m)]
    none, every = [False] * 10, [True] * 10
    assert lines == [
        {"result": 0, "video_id": 1, "category_id": 1, "score": 0.95, "gt_id": None,
         "iou": 0.0, "matched": none},
        {"result": 1, "video_id": 1, "category_id": 1, "score": 0.9, "gt_id": 11,
         "iou": 1.0, "matched": every},
        {"result": 2, "video_id": 1, "category_id": 1, "score": 0.8, "gt_id": 12,
         "iou": 1.0, "matched": every},
        {"result": 3, "video_id": 1, "category_id": 7, "score": 0.5, "gt_id": None,
         "iou": None, "matched": none},
    ]  # fmt: skip


def test_matches_partial_iou_and_thresholds() -> None:
    """A result covering 16 of 25 pixels of a ground truth in every frame (IoU 16/25 = 0.64):
    matched at 0.50, 0.55, 0.60 only; a second, lower-scored copy is a duplicate (unmatched,
    best IoU 0.64)."""
    gt = hc.gt_file([hc.video(1, 2)], [hc.track(5, 1, [A, A])])
    part = hc.rect(0, 4, 0, 4)
    results = [hc.result(1, [part, part], 0.7), hc.result(1, [part, part], 0.6)]
    for backend in BACKENDS:
        m = ovis_jax.evaluate(gt, results, backend=backend, matches=True).matches
        assert m.has_gt.tolist() == [True, False] and m.gt_id[0] == 5, backend
        _close(m.iou[0], F(16, 25), backend)
        _close(m.iou[1], F(16, 25), backend)
        assert m.matched.tolist() == [[True] * 3 + [False] * 7, [False] * 10], backend


@pytest.mark.parametrize("ytvis", [False, True])
def test_api_arrays_and_errors(tmp_path, request, ytvis: bool) -> None:
    gt, results = request.getfixturevalue("tiny_ytvis" if ytvis else "tiny")
    res = ovis_jax.evaluate(gt, results, backend="cpu", errors=True, matches=True)
    direct = analyze_errors(ovis_jax.load_ground_truth(gt), ovis_jax.load_results(
        results, ovis_jax.load_ground_truth(gt)))  # fmt: skip
    assert res.errors.errors == direct.errors and res.errors.counts == direct.counts
    assert res.to_json()["errors"] == direct.errors
    assert ovis_jax.evaluate(gt, results, backend="cpu").errors is None
    path = tmp_path / "a.npz"
    ovis_jax.save_arrays(res, path)
    with np.load(path) as z:
        np.testing.assert_array_equal(z["precision"], res.precision)
        np.testing.assert_array_equal(z["recall"], res.recall)
        np.testing.assert_array_equal(z["scores"], res.scores)
        np.testing.assert_array_equal(z["length_precision"], res.length_precision)
        assert z["precision"].shape[4] == (1 if ytvis else 4)
        assert z["iou_thresholds"].tolist() == list(res.params.iou_thresholds)
        assert z["category_names"].tolist() == list(res.category_names)
        assert z["max_dets"].tolist() == [1, 10, 100]
        assert str(z["format"]) == ("ytvis" if ytvis else "ovis")
    rows = res.per_category
    assert [k for k in rows[0] if k not in ("id", "name")] == [*res.stats, *res.length_stats]
    # A category's row is the summary of that category alone.
    one = ovis_jax.summarize(res.precision[:, :, :1], res.recall[:, :1], params=res.params,
                             with_occlusion=not ytvis)  # fmt: skip
    assert {k: rows[0][k] for k in one} == one


def _png(path) -> bool:
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("ytvis", [False, True])
def test_cli_analysis_outputs(tmp_path, request, capsys, ytvis: bool) -> None:
    pytest.importorskip("matplotlib")
    gt, results = request.getfixturevalue("tiny_ytvis" if ytvis else "tiny")
    results = [*results, dict(results[0], category_id=42)]  # not evaluated
    gt_path, res_path = tmp_path / "gt.json", tmp_path / "res.json"
    gt_path.write_text(json.dumps(gt))
    res_path.write_text(json.dumps(results))
    out = {k: tmp_path / k for k in ("out.json", "m.jsonl", "a.npz", "plots")}
    argv = ["--gt", str(gt_path), "--results", str(res_path), "--backend", "cpu", "--errors",
            "--json", str(out["out.json"]), "--matches", str(out["m.jsonl"]),
            "--arrays", str(out["a.npz"]), "--plots", str(out["plots"])]  # fmt: skip
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    expected = ovis_jax.evaluate(str(gt_path), str(res_path), backend="cpu", errors=True,
                                 matches=True)  # fmt: skip
    assert printed.endswith(format_errors(expected.errors) + "\n")
    assert ovis_jax.format_length(expected) in printed
    doc = json.loads(out["out.json"].read_text())
    assert doc["errors"] == expected.errors.errors
    assert doc["length"] == expected.length_stats
    lines = [json.loads(x) for x in out["m.jsonl"].read_text().splitlines()]
    assert [x["result"] for x in lines] == list(range(len(results)))
    assert lines[-1]["category_id"] == 42 and lines[-1]["gt_id"] is None
    assert lines[-1]["iou"] is None and lines[-1]["matched"] == [False] * 10
    want = [json.loads(x) for x in matches_lines(expected.matches)]
    assert lines == want
    with np.load(out["a.npz"]) as z:
        np.testing.assert_array_equal(z["precision"], expected.precision)
    names = sorted(p.name for p in out["plots"].iterdir())
    assert names == ["errors.png", "per_category.png", "pr_curve.png"]
    assert all(_png(p) for p in out["plots"].iterdir())


def test_plots_without_errors_and_many_categories(tmp_path) -> None:
    """More categories than are named: the sorted profile plus the best / worst panels."""
    pytest.importorskip("matplotlib")
    logging.getLogger("ovis_jax").setLevel(logging.ERROR)
    gt, results = synthetic.random_dataset(seed=7, num_categories=30, num_videos=20)
    res = ovis_jax.evaluate(gt, results, backend="cpu")
    old = plots.NAMED_CATEGORIES
    try:
        plots.NAMED_CATEGORIES = 5
        written = ovis_jax.plot_results(res, tmp_path / "p")
    finally:
        plots.NAMED_CATEGORIES = old
    assert [p.split("/")[-1] for p in written] == ["pr_curve.png", "per_category.png"]
    assert all(_png(p) for p in written)


def test_pr_curves_mean_is_the_ap(tiny) -> None:
    res = ovis_jax.evaluate(*tiny, backend="cpu")
    curves = plots.pr_curves(res)
    assert list(curves) == ["IoU=0.50", "IoU=0.75", "IoU=0.50:0.95"]
    for (key, curve), stat in zip(curves.items(), ("AP50", "AP75", "AP"), strict=True):
        assert abs(float(np.mean(curve)) - res.stats[stat]) <= TOL, key


def test_plots_without_matplotlib_exit_2(tmp_path, tiny, capsys, monkeypatch) -> None:
    monkeypatch.setattr(plots, "have_matplotlib", lambda: False)
    gt_path, res_path = tmp_path / "gt.json", tmp_path / "res.json"
    gt_path.write_text(json.dumps(tiny[0]))
    res_path.write_text(json.dumps(tiny[1]))
    argv = ["--gt", str(gt_path), "--results", str(res_path), "--plots", str(tmp_path / "p")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err == "error: --plots needs matplotlib: pip install 'ovis_jax[plots]'\n"
    assert not (tmp_path / "p").exists()
