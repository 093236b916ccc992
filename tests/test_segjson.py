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


def _many_tracks(seed: int, n: int) -> str:
    """A results file of ``n`` tracks in the common form with whitespace, nulls, ``\\\\``
    escapes and empty strings, about 2.4 MB for n = 8000 (several chunks on several cores)."""
    rng = np.random.default_rng(seed)
    items = []
    for i in range(n):
        frames = []
        for _ in range(int(rng.integers(0, 6))):
            if rng.random() < 0.3:
                frames.append(" null ")
                continue
            counts = "".join(chr(c) for c in rng.integers(48, 112, int(rng.integers(0, 200))))
            counts = counts.replace("\\", "\\\\")
            frames.append(f'{{"size": [{i % 7 + 1}, 3],\n "counts": "{counts}"}}')
        pad = " " * int(rng.integers(0, 40))
        items.append(f'{{"video_id": {i},{pad}"segmentations": [{",".join(frames)}], "score": 1}}')
    return "[" + ",\n".join(items) + "]"


@pytest.mark.parametrize("cores", [1, 4])
def test_in_place_equals_copy(monkeypatch, cores):
    monkeypatch.setattr("os.cpu_count", lambda: cores)
    text = _many_tracks(cores, 8000)
    assert len(text) > 2 << 20  # several chunks when cores > 1
    copy = _read(text)
    raw = bytearray(text.encode())
    tracks = read.TYPED_RESULTS.decode(raw)
    got = segjson.read_segmentations(raw, [t.segmentations for t in tracks], in_place=True)
    assert (
        got["chars"].base is not None
        and got["chars"].ctypes.data == np.frombuffer(raw, np.uint8).ctypes.data
    )  # written into the file's own buffer
    assert set(got) == set(copy)
    for name in copy:
        np.testing.assert_array_equal(got[name], copy[name], err_msg=name)


def test_in_place_leaves_the_bytes_alone_on_the_general_path():
    text = '[{"video_id": 1, "segmentations": [{"size": [2, 3], "counts": [6]}]}]'
    raw = bytearray(text.encode())
    tracks = read.TYPED_RESULTS.decode(raw)
    assert segjson.read_segmentations(raw, [t.segmentations for t in tracks], in_place=True) is None
    assert raw == text.encode()


def test_read_bytes_writable(tmp_path):
    import gzip

    path = tmp_path / "r.json"
    path.write_text(_many_tracks(0, 50))
    raw, _ = read.read_bytes(path, "results", writable=True)
    assert isinstance(raw, bytearray) and raw == path.read_bytes()
    plain, _ = read.read_bytes(path, "results")
    assert isinstance(plain, bytes) and plain == path.read_bytes()
    (tmp_path / "r.json.gz").write_bytes(gzip.compress(path.read_bytes()))
    packed, _ = read.read_bytes(tmp_path / "r.json.gz", "results", writable=True)
    assert isinstance(packed, bytearray) and packed == path.read_bytes()  # ours: read in place
    with pytest.raises(ovis_jax.FormatError, match="cap"):
        read.read_bytes(path, "results", writable=True, max_bytes=100)
