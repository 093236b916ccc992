"""The fast loading path (segmentations read from the file's bytes) == the general path."""

from __future__ import annotations

import json

import numpy as np
import pytest

import ovis_jax
from ovis_jax._src.io import read, segjson, segments
from ovis_jax.testing import synthetic


def _same_tables(a, b) -> None:
    for name in ("frame_start", "height", "width"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    np.testing.assert_array_equal(a.area, b.area)
    for t in range(a.num_tracks):
        assert a.rles()[t] == b.rles()[t], f"track {t}"


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_file_fast_path_equals_parsed_objects(tmp_path, seed):
    gt_dict, results = synthetic.ovis_like(
        seed=seed, num_videos=3, num_categories=3, frames=5, sizes=((40, 60),),
        predictions_per_video=6,
    )  # fmt: skip
    gt_path, res_path = tmp_path / "gt.json", tmp_path / "res.json"
    gt_path.write_text(json.dumps(gt_dict))
    res_path.write_text(json.dumps(results, indent=1))  # whitespace everywhere
    assert isinstance(read.read_source(res_path, "results", read.TYPED_RESULTS), segments.FastFile)
    fast_gt = ovis_jax.load_ground_truth(gt_path)
    slow_gt = ovis_jax.load_ground_truth(gt_dict)
    _same_tables(fast_gt.masks, slow_gt.masks)
    _same_tables(ovis_jax.load_results(res_path, fast_gt).masks,
                 ovis_jax.load_results(results, slow_gt).masks)  # fmt: skip
    a = ovis_jax.evaluate(gt_path, res_path, backend="cpu")
    b = ovis_jax.evaluate(gt_dict, results, backend="reference")
    assert a.stats == b.stats


def _read(text: str):
    raw = text.encode()
    track = read.TYPED_RESULTS.decode(raw)
    return segjson.read_segmentations(raw, [t.segmentations for t in track])


def test_common_form_variants():
    got = _read(
        '[{"video_id": 1, "segmentations": [null, {"counts": "0\\\\1", "size": [ 2 , 3 ]},'
        ' { "size":[2,3],"counts":""} ] }]'
    )
    assert got["frame_string"].tolist() == [-1, 0, 1]
    assert got["chars"].tobytes() == b"0\\1"  # the JSON escape \\ is one backslash
    assert got["char_start"].tolist() == [0, 3, 3]
    assert got["size"].tolist() == [[2, 3], [2, 3]]
    assert _read('[{"segmentations": []}]')["frame_start"].tolist() == [0, 0]


@pytest.mark.parametrize(
    "segs",
    [
        '[{"size": [2, 3], "counts": [6]}]',  # uncompressed
        "[[[0, 0, 1, 0, 1, 1]]]",  # polygon
        '[{"size": [2, 3], "counts": "6", "extra": 1}]',  # another key
        '[{"size": [2.0, 3], "counts": "6"}]',  # not a plain integer
        '[{"size": [2, 3], "counts": "\\u0036"}]',  # another escape
        '[{"size": [2, 3]}]',  # missing counts
        '[{"size": [2, 3], "counts": "6", "counts": "6"}]',  # duplicated key
    ],
)
def test_other_forms_take_the_general_path(segs):
    assert _read(f'[{{"video_id": 1, "segmentations": {segs}}}]') is None


def test_fast_path_errors_name_the_item(tmp_path, tiny):
    gt, results = tiny
    results[2]["segmentations"][0]["size"] = [10, 11]
    gt_path, res_path = tmp_path / "gt.json", tmp_path / "res.json"
    gt_path.write_text(json.dumps(gt))
    res_path.write_text(json.dumps(results))
    with pytest.raises(ovis_jax.FormatError) as fast:
        ovis_jax.load_results(res_path, ovis_jax.load_ground_truth(gt_path))
    with pytest.raises(ovis_jax.FormatError) as slow:
        ovis_jax.load_results(results, ovis_jax.load_ground_truth(gt))
    assert str(fast.value) == str(slow.value)
    assert "results[2] (video_id 2), frame 0: mask size [10, 11]" in str(fast.value)
