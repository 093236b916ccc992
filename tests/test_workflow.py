"""The research workflow: subsets, category groups, check, pack, split, archives, progress.

Hand-derived expectations are exact fractions (see ``handcases``' conventions: one TP of G = 2
gives AP = 51/101).
"""

from __future__ import annotations

import copy
import gzip
import json
import logging
import subprocess
import sys
import zipfile
from fractions import Fraction as F

import numpy as np
import pytest
from handcases import gt_file, rect, result, track, video

import ovis_jax
from ovis_jax import FormatError, load_ground_truth
from ovis_jax._src.cli.commands import check_main, pack_main, split_main
from ovis_jax._src.progress import STAGES
from ovis_jax._src.workflow.check import check_results
from ovis_jax._src.workflow.split import split_ground_truth
from ovis_jax.testing import synthetic

BACKENDS = ("cpu", "jax", "reference")
A = rect(0, 5, 0, 5)
B = rect(5, 10, 5, 10)


def assert_stats(got: dict, want: dict, *, what: str) -> None:
    bad = {
        k: (got[k], float(v), got[k] - float(v)) for k, v in want.items() if abs(got[k] - v) > 1e-12
    }
    assert not bad, f"{what}: (got, want, diff) per key: {bad}"


def two_videos() -> tuple[dict, list]:
    """Video 1: category 1's track matched perfectly (score 0.9). Video 2: category 2's
    track, whose only result (score 0.8) misses it (IoU 0)."""
    gt = gt_file(
        [video(1, 2), video(2, 2)],
        [track(1, 1, [A, A], category_id=1), track(2, 2, [A, A], category_id=2)],
        categories=(1, 2),
    )
    results = [
        result(1, [A, A], 0.9, category_id=1),
        result(2, [B, B], 0.8, category_id=2),
    ]
    return gt, results


# --------------------------------------------------------------------------------------------
# Subsets and groups, by hand


@pytest.mark.parametrize("backend", BACKENDS)
def test_subsets_and_groups_by_hand(backend):
    gt, results = two_videos()
    r = ovis_jax.evaluate(
        gt, results, backend=backend, subsets={"short": [1], "long": [2]}, groups={"one": [1]}
    )
    # Whole: category 1 AP 1, category 2 AP 0 -> mean 1/2 (AR likewise).
    assert_stats(r.stats, {"AP": F(1, 2), "AP50": F(1, 2), "AR100": F(1, 2)}, what="whole")
    # Subset short (video 1): category 1 AP 1; category 2 has no ground truth there (-1).
    assert_stats(r.subsets["short"].stats, {"AP": 1, "AR1": 1, "APso": 1}, what="short")
    assert_stats(r.subsets["long"].stats, {"AP": 0, "AR100": 0}, what="long")
    assert r.short_long_map == pytest.approx(0.5, abs=1e-15)
    assert r.to_json()["ytvis2022_mAP"] == r.short_long_map
    # Group "one": only category 1 -> every defined number is 1.
    assert_stats(r.groups["one"], {"AP": 1, "AP75": 1, "AR10": 1}, what="group one")
    assert r.groups["one"]["APm"] == -1  # small tracks only
    assert r.subsets["long"].groups["one"]["AP"] == -1  # no category-1 ground truth there
    doc = r.to_json()
    assert doc["groups"]["one"]["category_ids"] == [1]
    assert set(doc["subsets"]) == {"short", "long"}


def test_results_of_other_videos_are_left_out_of_a_subset():
    """A perfect result in video 2 lifts the whole AP but not subset short's."""
    gt, results = two_videos()
    results.append(result(2, [A, A], 0.95, category_id=1))  # no category-1 GT in video 2
    r = ovis_jax.evaluate(gt, results, backend="cpu", subsets={"short": [1]})
    # Whole, category 1: the FP (0.95) ranks first, then the TP: precision 1/2 at every
    # recall point -> AP 1/2; category 2: 0. Mean 1/4.
    assert_stats(r.stats, {"AP50": F(1, 4)}, what="whole")
    assert_stats(r.subsets["short"].stats, {"AP50": 1}, what="short")


def test_lvis_partition_groups_are_automatic():
    gt, results = two_videos()
    gt["categories"][0]["partition"] = 0
    gt["categories"][1]["partition"] = 3
    r = ovis_jax.evaluate(gt, results, backend="cpu")
    assert list(r.groups) == ["base", "novel"]
    assert_stats(r.groups["base"], {"AP": 1}, what="base")
    assert_stats(r.groups["novel"], {"AP": 0}, what="novel")
    # A group given by the user with the same name wins.
    r = ovis_jax.evaluate(gt, results, backend="cpu", groups={"base": [2]})
    assert r.group_categories["base"].tolist() == [2]


def test_unknown_ids_in_subsets_and_groups_are_named():
    gt, results = two_videos()
    with pytest.raises(ValueError, match=r"subset 's'.*7"):
        ovis_jax.evaluate(gt, results, backend="cpu", subsets={"s": [1, 7]})
    with pytest.raises(ValueError, match=r"group 'g'.*9"):
        ovis_jax.evaluate(gt, results, backend="cpu", groups={"g": [9]})


# --------------------------------------------------------------------------------------------
# Subsets and groups, by equivalence


def _restricted(gt: dict, results: list, *, videos=None, categories=None) -> tuple[dict, list]:
    gt = copy.deepcopy(gt)
    if videos is not None:
        gt["videos"] = [v for v in gt["videos"] if v["id"] in videos]
        gt["annotations"] = [a for a in gt["annotations"] if a["video_id"] in videos]
        results = [r for r in results if r["video_id"] in videos]
    if categories is not None:
        gt["categories"] = [c for c in gt["categories"] if c["id"] in categories]
        gt["annotations"] = [a for a in gt["annotations"] if a["category_id"] in categories]
        results = [r for r in results if r["category_id"] in categories]
    return gt, results


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_subset_equals_a_file_of_its_videos(seed, backend):
    gt, results = synthetic.random_dataset(seed=seed)
    vids = [v["id"] for v in gt["videos"]]
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(vids, size=max(1, len(vids) // 2), replace=False).tolist())
    r = ovis_jax.evaluate(gt, results, backend=backend, subsets={"s": chosen})
    alone = ovis_jax.evaluate(*_restricted(gt, results, videos=set(chosen)), backend=backend)
    assert_stats(r.subsets["s"].stats, alone.stats, what=f"seed {seed}")
    np.testing.assert_array_equal(r.subsets["s"].precision, alone.precision)


@pytest.mark.parametrize("seed", [0, 3])
def test_group_equals_a_file_of_its_categories(seed):
    """Categories are evaluated independently, so a group's numbers equal the evaluation of
    the ground truth and results restricted to its categories."""
    gt, results = synthetic.ovis_like(seed=seed, num_videos=6)
    cats = [c["id"] for c in gt["categories"]][::3]
    r = ovis_jax.evaluate(gt, results, backend="cpu", groups={"g": cats})
    alone = ovis_jax.evaluate(*_restricted(gt, results, categories=set(cats)), backend="cpu")
    assert_stats(r.groups["g"], alone.stats, what=f"seed {seed}")


def test_group_of_every_category_is_the_whole():
    gt, results = synthetic.random_dataset(seed=5)
    r = ovis_jax.evaluate(gt, results, backend="cpu", groups={"all": r_ids(gt)})
    assert r.groups["all"] == r.stats


def r_ids(gt: dict) -> list[int]:
    return [c["id"] for c in gt["categories"]]


# --------------------------------------------------------------------------------------------
# Ground truth without annotations, archives


def test_ground_truth_without_annotations(tmp_path):
    gt, results = two_videos()
    for value in ("absent", None):
        g = dict(gt)
        if value == "absent":
            del g["annotations"]
        else:
            g["annotations"] = None
        with pytest.raises(FormatError, match=r"no 'annotations'.*python -m ovis_jax\.check"):
            ovis_jax.evaluate(g, results, backend="cpu")
        loaded = load_ground_truth(g, require_annotations=False)
        assert not loaded.has_annotations and loaded.ann_id.shape == (0,)
        assert check_results(loaded, results).ok


def test_results_from_zip_and_gzip(tmp_path):
    gt, results = two_videos()
    raw = json.dumps(results).encode()
    (tmp_path / "r.json.gz").write_bytes(gzip.compress(raw))
    with zipfile.ZipFile(tmp_path / "nested.zip", "w") as z:
        z.writestr("folder/preds.json", raw)  # one JSON member, wherever it is
    with zipfile.ZipFile(tmp_path / "two.zip", "w") as z:
        z.writestr("a.json", raw)
        z.writestr("b.json", raw)
    want = ovis_jax.evaluate(gt, results, backend="cpu").stats
    for name in ("r.json.gz", "nested.zip"):
        assert ovis_jax.evaluate(gt, str(tmp_path / name), backend="cpu").stats == want
    with pytest.raises(FormatError, match=r"two\.zip.* 2 JSON members"):
        ovis_jax.evaluate(gt, str(tmp_path / "two.zip"), backend="cpu")


# --------------------------------------------------------------------------------------------
# check


def planted(tmp_path) -> tuple[str, str, list[str]]:
    """A ground truth without annotations, and results with one problem planted per kind."""
    gt, results = synthetic.ovis_like(seed=1, num_videos=3)
    results = results[:12]
    v0 = results[0]["video_id"]
    bad = copy.deepcopy(results)
    bad[1]["video_id"] = 99999
    bad[2]["segmentations"] = bad[2]["segmentations"][:-1]
    bad[4]["category_id"] = 777
    bad[5]["score"] = "high"
    t = next(t for t, s in enumerate(bad[6]["segmentations"]) if s)
    seg = bad[6]["segmentations"][t]
    bad[6]["segmentations"][t] = {"size": [seg["size"][0] + 1, seg["size"][1]], "counts": "0"}
    bad.append(copy.deepcopy(bad[8]))
    del gt["annotations"]
    gt_path, res_path = tmp_path / "valid.json", tmp_path / "results.json"
    gt_path.write_text(json.dumps(gt))
    res_path.write_text(json.dumps(bad))
    v = [r["video_id"] for r in bad]
    length = len(results[2]["segmentations"])
    want = [
        "results[1] (video_id 99999): unknown video_id 99999",
        f"results[2] (video_id {v[2]}): 'segmentations' has {length - 1} entries, expected "
        f"{length}",
        f"results[4] (video_id {v[4]}): category_id 777 is not a category",
        f"results[5] (video_id {v[5]}): 'score' must be a finite number, got 'high'",
        f"results[6] (video_id {v[6]}), frame {t}: mask size",
        f"results[12] (video_id {v[8]}): exact duplicate of results[8]",
    ]
    assert v0 is not None
    return str(gt_path), str(res_path), want


def test_check_lists_every_problem(tmp_path):
    gt_path, res_path, want = planted(tmp_path)
    report = check_results(load_ground_truth(gt_path, require_annotations=False), res_path)
    assert len(report.problems) == len(want), "\n".join(report.problems)
    for got, expected in zip(report.problems, want, strict=True):
        assert got.startswith(expected), f"got {got!r}\nwant {expected!r}..."
    assert report.num_results == 13 and report.num_videos == 3


def test_check_cli(tmp_path, capsys):
    gt_path, res_path, want = planted(tmp_path)
    assert check_main(["--gt", gt_path, "--results", res_path]) == 2
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(want) + 1 and "6 problem(s)" in out[-1]
    clean = tmp_path / "clean.json"
    clean.write_text(json.dumps(json.loads(open(res_path).read())[7:12]))
    assert check_main(["--gt", gt_path, "--results", str(clean)]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert ": ok: 5 results for" in line


def test_check_caps_the_list(tmp_path, capsys, monkeypatch):
    from ovis_jax._src.cli import commands

    monkeypatch.setattr(commands, "MAX_LISTED", 2)
    gt_path, res_path, want = planted(tmp_path)
    assert check_main(["--gt", gt_path, "--results", res_path]) == 2
    out = capsys.readouterr().out.splitlines()
    assert out[2] == f"... and {len(want) - 2} more problem(s)"


# --------------------------------------------------------------------------------------------
# pack


def test_pack_round_trip(tmp_path, capsys):
    gt, results = two_videos()
    res = tmp_path / "results.json"
    res.write_text(json.dumps(results))
    out = tmp_path / "submission.zip"
    assert pack_main(["--results", str(res), "--out", str(out)]) == 0
    assert "results.json at the root" in capsys.readouterr().out
    with zipfile.ZipFile(out) as z:
        assert z.namelist() == ["results.json"]
        assert z.read("results.json") == res.read_bytes()
    want = ovis_jax.evaluate(gt, str(res), backend="cpu").stats
    assert ovis_jax.evaluate(gt, str(out), backend="cpu").stats == want
    again = tmp_path / "again.zip"  # a zip in, the same layout out
    assert pack_main(["--results", str(out), "--out", str(again)]) == 0
    with zipfile.ZipFile(again) as z:
        assert z.read("results.json") == res.read_bytes()


def test_pack_refuses_a_file_with_problems(tmp_path, capsys):
    gt_path, res_path, _ = planted(tmp_path)
    out = tmp_path / "submission.zip"
    assert pack_main(["--results", res_path, "--out", str(out), "--gt", gt_path]) == 2
    assert not out.exists()
    assert "error: " in capsys.readouterr().err


def test_pack_refuses_a_non_list(tmp_path, capsys):
    res = tmp_path / "results.json"
    res.write_text('{"annotations": []}')
    assert pack_main(["--results", str(res), "--out", str(tmp_path / "s.zip")]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: ") and "JSON list" in line


# --------------------------------------------------------------------------------------------
# split


@pytest.mark.parametrize(
    ("seed", "fraction"),
    [
        (0, 0.2),
        pytest.param(1, 0.5, marks=pytest.mark.slow),
        pytest.param(7, 0.3, marks=pytest.mark.slow),
    ],
)
def test_split_invariants(seed, fraction):
    gt, _ = synthetic.ovis_like(seed=seed, num_videos=30, num_categories=8)
    train, valid = split_ground_truth(gt, fraction=fraction, seed=seed)
    tv = {v["id"] for v in train["videos"]}
    vv = {v["id"] for v in valid["videos"]}
    assert not tv & vv and tv | vv == {v["id"] for v in gt["videos"]}
    assert abs(len(vv) / 30 - fraction) <= 0.1
    for half, vids in ((train, tv), (valid, vv)):
        assert all(a["video_id"] in vids for a in half["annotations"])
        assert half["categories"] == gt["categories"]
    assert len(train["annotations"]) + len(valid["annotations"]) == len(gt["annotations"])
    videos_of: dict[int, set[int]] = {}
    for a in gt["annotations"]:
        videos_of.setdefault(a["category_id"], set()).add(a["video_id"])
    for c, vids in videos_of.items():
        if len(vids) >= 4:
            assert vids & tv and vids & vv, f"category {c} is not in both halves"
    assert split_ground_truth(gt, fraction=fraction, seed=seed) == (train, valid)


def test_split_cli_is_byte_identical(tmp_path, capsys):
    gt, _ = synthetic.ovis_like(seed=2, num_videos=12, num_categories=5)
    path = tmp_path / "train.json"
    path.write_text(json.dumps(gt))
    outs = []
    for name in ("a", "b"):
        argv = [
            "--gt",
            str(path),
            "--fraction",
            "0.25",
            "--seed",
            "4",
            "--out",
            str(tmp_path / name),
        ]
        assert split_main(argv) == 0
        outs.append(
            [(tmp_path / name / f).read_bytes() for f in ("train_sub.json", "valid_sub.json")]
        )
    assert outs[0] == outs[1]
    assert load_ground_truth(str(tmp_path / "a" / "valid_sub.json")).videos
    assert split_main(["--gt", str(path), "--fraction", "1.5", "--out", str(tmp_path / "c")]) == 2
    assert "fraction must be in (0, 1)" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# eval CLI and progress


def test_eval_cli_subsets_and_groups(tmp_path):
    gt, results = two_videos()
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "r.json").write_text(json.dumps(results))
    (tmp_path / "short.json").write_text(json.dumps(gt_file([video(1, 2)], [])))
    (tmp_path / "long.json").write_text("[2]")
    (tmp_path / "g.json").write_text("[2]")
    cmd = [sys.executable, "-m", "ovis_jax.eval", "--gt", "gt.json", "--results", "r.json"]
    cmd += ["--backend", "cpu", "--subset", "short=short.json", "--subset", "long=long.json"]
    cmd += ["--group", "two=g.json", "--json", "out.json"]
    p = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "YouTube-VIS 2022 mAP = (AP_short + AP_long) / 2 = 0.500" in p.stdout
    assert "subset 'long':" in p.stdout and "\ntwo " in p.stdout
    doc = json.loads((tmp_path / "out.json").read_text())
    # 1 / (1 + eps) per recall point (metric step 11), hence not exactly 1/2.
    assert doc["ytvis2022_mAP"] == pytest.approx(0.5, abs=1e-12)
    assert doc["groups"]["two"]["stats"]["AP"] == 0
    assert doc["subsets"]["short"]["stats"]["AP"] == pytest.approx(1, abs=1e-12)
    del gt["annotations"]
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    p = subprocess.run(cmd[:9], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert p.returncode == 2 and p.stderr.count("\n") == 1
    assert p.stderr.startswith("error: ") and "python -m ovis_jax.check" in p.stderr


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_backend_reports_every_stage(backend, tmp_path, caplog):
    gt, results = two_videos()
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "r.json").write_text(json.dumps(results))
    with caplog.at_level(logging.INFO, logger="ovis_jax"):
        ovis_jax.evaluate(str(tmp_path / "gt.json"), str(tmp_path / "r.json"), backend=backend)
    stages = [r.progress[2] for r in caplog.records if hasattr(r, "progress")]
    stages = [s for s in stages if s in (*STAGES, "done")]
    assert list(dict.fromkeys(stages)) == [*STAGES, "done"], stages
