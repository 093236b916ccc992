"""Regressions found by the parity sweep against the live official evaluators (issue 17):
each input is the minimal case the sweep reduced, with the official YouTube-VIS evaluator's
twelve numbers pinned (recipe: ``YTVOS(gt)``, ``loadRes(results)``, ``YTVOSeval(..., "segm")``,
``evaluate(); accumulate(); summarize()``, ``stats``). Every case runs on every backend, from
dicts and from files (the fast reading path), and through the compat classes.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import ovis_jax
from ovis_jax import compat

BACKENDS = ("cpu", "jax", "reference")
UNDEFINED = [-1.0] * 12
# fmt: off
LONG_TRACK = [0.9999999999999998, 0.9999999999999999, 0.9999999999999999, 0.9999999999999998,
              -1.0, -1.0, 1.0, 1.0, 1.0, 1.0, -1.0, -1.0]
# fmt: on


def _video(n: int, h: int = 2, w: int = 2) -> dict:
    return {"id": 1, "height": h, "width": w, "length": n,
            "file_names": [f"v1/{t}.jpg" for t in range(n)]}  # fmt: skip


def _no_annotations() -> tuple[dict, list]:
    gt = {"videos": [_video(1)], "annotations": [], "categories": [{"id": 1, "name": "a"}]}
    res = [{"video_id": 1, "category_id": 1, "score": 0.5,
            "segmentations": [{"size": [2, 2], "counts": "04"}]}]  # fmt: skip
    return gt, res


def _long_track(n: int = 256) -> tuple[dict, list]:
    """One 1x1 pixel on in every one of ``n`` frames, found exactly."""
    seg = [{"size": [1, 1], "counts": "01"}] * n
    ann = {"id": 1, "video_id": 1, "category_id": 1, "iscrowd": 0, "segmentations": seg,
           "areas": [1] * n, "bboxes": [[0, 0, 1, 1]] * n}  # fmt: skip
    gt = {"videos": [_video(n, 1, 1)], "annotations": [ann],
          "categories": [{"id": 1, "name": "a"}]}  # fmt: skip
    return gt, [{"video_id": 1, "category_id": 1, "score": 0.5, "segmentations": seg}]


def _empty_object_frame() -> tuple[dict, list]:
    """A result frame written as ``{}``: the official code tests ``if seg:``, a null frame."""
    seg = {"size": [2, 2], "counts": [0, 2, 2]}
    ann = {"id": 1, "video_id": 1, "category_id": 1, "iscrowd": 0, "segmentations": [seg, seg],
           "areas": [2, 2], "bboxes": [[0, 0, 1, 2], [0, 0, 1, 2]]}  # fmt: skip
    gt = {"videos": [_video(2)], "annotations": [ann], "categories": [{"id": 1, "name": "a"}]}
    res = [{"video_id": 1, "category_id": 1, "score": 0.9,
            "segmentations": [{"size": [2, 2], "counts": "031"}, {}]}]  # fmt: skip
    return gt, res


CASES = {
    "no_annotations": (_no_annotations, UNDEFINED),
    "track_of_256_frames": (
        _long_track,
        LONG_TRACK,
    ),
    "empty_object_frame": (
        _empty_object_frame,
        [0.0, 0.0, 0.0, 0.0, -1.0, -1.0, 0.0, 0.0, 0.0, 0.0, -1.0, -1.0],
    ),
}


def _files(tmp_path, make) -> tuple[str, str]:
    gt, res = make()
    g, r = tmp_path / "gt.json", tmp_path / "res.json"
    g.write_text(json.dumps(gt))
    r.write_text(json.dumps(res))
    return str(g), str(r)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_official_numbers_from_dicts_and_files(tmp_path, case, backend):
    make, want = CASES[case]
    assert list(ovis_jax.evaluate(*make(), backend=backend).stats.values()) == want
    from_files = ovis_jax.evaluate(*_files(tmp_path, make), backend=backend)
    assert list(from_files.stats.values()) == want


@pytest.mark.parametrize("case", sorted(CASES))
def test_official_numbers_through_compat(tmp_path, case):
    make, want = CASES[case]
    gt_path, res_path = _files(tmp_path, make)
    gt = compat.YTVOS(gt_path)
    e = compat.YTVOSeval(gt, gt.loadRes(res_path), "segm")
    e.evaluate()
    e.accumulate()
    e.summarize()
    assert [float(x) for x in e.stats] == want


def test_cli_tracking_json_without_annotations(tmp_path):
    """No category holds a ground truth: the present-categories average is NaN at every alpha
    (null in JSON), and the run succeeds."""
    gt_path, res_path = _files(tmp_path, _no_annotations)
    out = tmp_path / "out.json"
    cmd = [sys.executable, "-m", "ovis_jax.eval", "--gt", gt_path, "--results", res_path,
           "-q", "--metrics", "ap,hota,clear,identity", "--json", str(out)]  # fmt: skip
    p = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert p.returncode == 0, p.stderr
    doc = json.loads(out.read_text())
    assert list(doc["stats"].values()) == UNDEFINED
    present = doc["tracking"]["class_average_present"]
    assert present["per_alpha"]["HOTA"] == [None] * 19


@pytest.mark.parametrize("backend", BACKENDS)
def test_missing_iscrowd_is_not_a_crowd_with_a_warning(backend):
    gt, res = _empty_object_frame()
    bare = {**gt, "annotations": [{k: v for k, v in a.items() if k != "iscrowd"}
                                  for a in gt["annotations"]]}  # fmt: skip
    want = ovis_jax.evaluate(gt, res, backend=backend)
    got = ovis_jax.evaluate(bare, res, backend=backend)
    assert got.stats == want.stats
    assert [w for w in got.warnings if "iscrowd" in w] == [
        "1 ground-truth annotation(s) have no 'iscrowd': taken as 0 (not a crowd; the official "
        "evaluator raises KeyError here)"
    ]
    assert not [w for w in want.warnings if "iscrowd" in w]


def test_shared_category_names_warned_and_kept_apart():
    gt, res = _empty_object_frame()
    gt["categories"] = [{"id": 1, "name": "a"}, {"id": 2, "name": "a"}]
    r = ovis_jax.evaluate(gt, res, backend="cpu", metrics=("ap", "hota"))
    assert any("share the name(s) ['a']" in w for w in r.warnings)
    ids = [c["id"] for c in r.metrics["tracking"].per_category]
    assert ids == [1, 2]
