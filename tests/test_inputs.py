"""Inputs as the ecosystem writes them and as hostile or careless users hand them over
(issues 16, 17 §3-4, 18 §3): the format object, read caps and compression bombs, special
files, zip archives the server rejects, ground truths without ``length``, the per-frame CocoVID
layout, uncompressed RLE, swapped or foreign inputs.

Numbers are compared with the same input in its plain form (whose numbers the official-golden
tests pin), on every backend.
"""

from __future__ import annotations

import ast
import copy
import gzip
import itertools
import json
import logging
import os
import shutil
import stat
import subprocess
import threading
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

import ovis_jax
from ovis_jax import DataFormat, FormatError
from ovis_jax._src.io import read
from ovis_jax._src.workflow.check import check_results
from ovis_jax._src.workflow.pack import pack_results

BACKENDS = ("cpu", "jax", "reference")
ROOT = Path(__file__).resolve().parent.parent


def _stats(gt, res, backend="cpu") -> list[float]:
    return list(ovis_jax.evaluate(gt, res, backend=backend).stats.values())


def _gz_bomb(path: Path, n_bytes: int, *, members: int = 1) -> None:
    """A gzip of ``[`` + ``n_bytes`` spaces + ``]`` (``members`` concatenated copies)."""
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    one = c.compress(b"[") + c.compress(b" " * n_bytes) + c.compress(b"]") + c.flush()
    path.write_bytes(one * members)


# --------------------------------------------------------------------------------------------
# The format object and the split of the io package (issue 16)


def test_data_format_is_the_string(tiny):
    assert DataFormat.OVIS == "ovis" and DataFormat.YTVIS == "ytvis"
    assert DataFormat("ovis") is DataFormat.OVIS and f"{DataFormat.YTVIS}" == "ytvis"
    assert json.dumps({"f": DataFormat.OVIS}) == '{"f": "ovis"}'
    assert DataFormat.OVIS.has_occlusion and not DataFormat.YTVIS.has_occlusion
    assert [r[0] for r in DataFormat.OVIS.length_ranges][-1] == "very_long"
    assert [r[0] for r in DataFormat.YTVIS.length_ranges][-1] == "long"
    gt = tiny[0]
    assert ovis_jax.load_ground_truth(gt).format is DataFormat.OVIS
    for a in gt["annotations"]:
        del a["occlusion"]
    assert ovis_jax.load_ground_truth(gt).format is DataFormat.YTVIS


def _private_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    return [
        f"{node.module}.{a.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ovis_jax")
        for a in node.names
        if a.name.startswith("_") and a.name != "__future__"
    ]


def test_workflow_and_io_import_no_private_names():
    pkg = ROOT / "ovis_jax" / "_src"
    files = [*sorted((pkg / "io").glob("*.py")), pkg / "workflow" / "check.py"]
    files += [pkg / "workflow" / "pack.py"]
    bad = {str(f.relative_to(ROOT)): _private_imports(f) for f in files if f.name != "loading.py"}
    assert not {k: v for k, v in bad.items() if v}


# --------------------------------------------------------------------------------------------
# Caps, bombs, special files (issue 17 §3)


def test_gzip_bomb_refused_under_an_explicit_cap(tmp_path, tiny):
    gt = ovis_jax.load_ground_truth(tiny[0])
    bomb = tmp_path / "bomb.json.gz"
    _gz_bomb(bomb, 8 << 20)
    with pytest.raises(FormatError, match=r"bomb\.json\.gz.*more than the cap of 1048576 bytes"):
        ovis_jax.load_results(str(bomb), gt, max_bytes=1 << 20)
    with pytest.raises(FormatError, match="OVIS_JAX_MAX_INPUT_BYTES"):
        read.read_bytes(bomb, "results", max_bytes=1 << 20)


def test_multi_member_gzip_bomb_refused_by_the_expansion_guard(tmp_path, tiny, monkeypatch):
    monkeypatch.setattr(read, "RATIO_FREE_BYTES", 1 << 20)
    gt = ovis_jax.load_ground_truth(tiny[0])
    bomb = tmp_path / "multi.json.gz"
    _gz_bomb(bomb, 4 << 20, members=4)
    with pytest.raises(FormatError, match="expands more than 100 times"):
        ovis_jax.load_results(str(bomb), gt)
    # An explicit cap replaces the guard: the same file is read whole under 64 MiB.
    monkeypatch.setenv(read.MAX_INPUT_BYTES_ENV, str(64 << 20))
    with pytest.raises(FormatError, match=r"not valid JSON.*trailing characters \(byte 4194307\)"):
        ovis_jax.load_results(str(bomb), gt)  # read whole: four "[ ... ]" documents


def test_environment_cap(tmp_path, tiny, monkeypatch):
    gt = ovis_jax.load_ground_truth(tiny[0])
    p = tmp_path / "res.json"
    p.write_text(json.dumps(tiny[1]))
    monkeypatch.setenv(read.MAX_INPUT_BYTES_ENV, "100")
    with pytest.raises(FormatError, match="more than the cap of 100 bytes"):
        ovis_jax.load_results(str(p), gt)
    monkeypatch.setenv(read.MAX_INPUT_BYTES_ENV, "lots")
    with pytest.raises(ValueError, match="OVIS_JAX_MAX_INPUT_BYTES"):
        ovis_jax.load_results(str(p), gt)
    with pytest.raises(ValueError, match="max_bytes"):
        ovis_jax.load_results(str(p), gt, max_bytes=0)


@pytest.mark.parametrize("members", [1, 3])
def test_gzip_members_and_padding_read_whole(tmp_path, tiny, members):
    gt_dict, res = tiny
    raw = json.dumps(res).encode()
    cut = np.linspace(0, len(raw), members + 1).astype(int).tolist()
    parts = [raw[a:b] for a, b in itertools.pairwise(cut)]
    p = tmp_path / "res.json.gz"
    p.write_bytes(b"".join(gzip.compress(x) for x in parts) + b"\0" * 7)
    gt = ovis_jax.load_ground_truth(gt_dict)
    for b in BACKENDS:
        assert _stats(gt, str(p), b) == _stats(gt, res, b)
    p.write_bytes(gzip.compress(raw)[:-9])
    with pytest.raises(FormatError, match="corrupt gzip"):
        ovis_jax.load_results(str(p), gt)


def test_device_refused(tiny):
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    gt = ovis_jax.load_ground_truth(tiny[0])
    with pytest.raises(FormatError, match="not a regular file"):
        ovis_jax.load_results("/dev/zero", gt)


def test_fifo_read_under_the_cap(tmp_path, tiny):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    gt = ovis_jax.load_ground_truth(tiny[0])
    fifo = tmp_path / "res.fifo"
    os.mkfifo(fifo)

    def feed(data: bytes) -> threading.Thread:
        def run():
            with open(fifo, "wb") as f:
                try:
                    f.write(data)
                except BrokenPipeError:
                    pass

        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t

    t = feed(json.dumps(tiny[1]).encode())
    assert _stats(gt, ovis_jax.load_results(str(fifo), gt)) == _stats(gt, tiny[1])
    t.join(10)
    t = feed(b" " * (4 << 20))
    with pytest.raises(FormatError, match="more than the cap"):
        ovis_jax.load_results(str(fifo), gt, max_bytes=1 << 20)
    t.join(10)


# --------------------------------------------------------------------------------------------
# Zip archives (issue 17 §4)


def _zip(path: Path, members: list[tuple[str, bytes]], method=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=method) as z:
        for name, data in members:
            z.writestr(name, data)
    return path


def _patch_zip(path: Path, *, flag: int | None = None, method: int | None = None) -> None:
    """Sets the general-purpose flag / compression method of every entry (local headers and
    the central directory), as ``zip -P``, WinZip AES or Deflate64 writers do."""
    b = bytearray(path.read_bytes())
    for sig, off in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        i = b.find(sig)
        while i >= 0:
            if flag is not None:
                old = int.from_bytes(b[i + off : i + off + 2], "little")
                b[i + off : i + off + 2] = (old | flag).to_bytes(2, "little")
            if method is not None:
                b[i + off + 2 : i + off + 4] = method.to_bytes(2, "little")
            i = b.find(sig, i + 4)
    path.write_bytes(bytes(b))


@pytest.mark.parametrize(
    ("flag", "method", "expect"),
    [
        (1, None, "encrypted"),
        (1, 99, r"encrypted \(password-protected, AES\)"),
        (None, 9, "Deflate64"),
        (None, 97, "compression method 97"),
    ],
    ids=["zipcrypto", "aes", "deflate64", "wavpack"],
)
def test_unreadable_zip_members_are_one_format_error(tmp_path, tiny, flag, method, expect):
    gt = ovis_jax.load_ground_truth(tiny[0])
    p = _zip(tmp_path / "sub.zip", [("results.json", json.dumps(tiny[1]).encode())])
    _patch_zip(p, flag=flag, method=method)
    with pytest.raises(FormatError, match=expect):
        ovis_jax.load_results(str(p), gt)
    with pytest.raises(FormatError, match=expect):
        check_results(gt, str(p))


def test_zip_made_with_zip_minus_p(tmp_path, tiny):
    if shutil.which("zip") is None:
        pytest.skip("no zip command")
    gt = ovis_jax.load_ground_truth(tiny[0])
    (tmp_path / "results.json").write_text(json.dumps(tiny[1]))
    cmd = ["zip", "-q", "-P", "secret", "sub.zip", "results.json"]
    subprocess.run(cmd, cwd=tmp_path, check=True)
    with pytest.raises(FormatError, match=r"member 'results.json'\) is encrypted"):
        ovis_jax.load_results(str(tmp_path / "sub.zip"), gt)


def test_zip_member_over_the_cap(tmp_path, tiny):
    gt = ovis_jax.load_ground_truth(tiny[0])
    p = _zip(tmp_path / "bomb.zip", [("results.json", b"[" + b" " * (8 << 20) + b"]")])
    with pytest.raises(FormatError, match="more than the cap of 1048576"):
        ovis_jax.load_results(str(p), gt, max_bytes=1 << 20)


def test_check_lists_zip_layouts_the_server_rejects(tmp_path, tiny):
    gt = ovis_jax.load_ground_truth(tiny[0])
    raw = json.dumps(tiny[1]).encode()
    nested = _zip(tmp_path / "nested.zip", [("sub/results.json", raw)])
    rep = check_results(gt, str(nested))
    assert rep.problems == (
        "the archive holds 'sub/results.json' inside a folder: the server reads results.json "
        "at the root of the archive (python -m ovis_jax.pack writes that layout)",
    )
    assert _stats(gt, str(nested)) == _stats(gt, tiny[1])  # evaluation still reads it
    with pytest.warns(UserWarning, match="Duplicate name"):
        two = _zip(tmp_path / "two.zip", [("results.json", b"[]"), ("results.json", raw)])
    rep = check_results(gt, str(two))
    assert rep.problems == (
        "the archive has 2 members named 'results.json': which one the server reads is "
        "undefined (python -m ovis_jax.pack writes one)",
    )
    assert rep.num_results == len(tiny[1])  # the last member, as Python's zipfile reads
    with pytest.raises(FormatError, match=r"2 members named 'results\.json'"):
        ovis_jax.load_results(str(two), gt)
    good = tmp_path / "good.zip"
    pack_results(str(nested), str(good))
    assert check_results(gt, str(good)).ok


# --------------------------------------------------------------------------------------------
# What the ecosystem writes (issue 18 §3)


def _without_length(gt: dict) -> dict:
    gt = copy.deepcopy(gt)
    for v in gt["videos"]:
        v.pop("length", None)
        v.pop("file_names", None)
    return gt


@pytest.mark.parametrize("backend", BACKENDS)
def test_ground_truth_without_length_takes_it_from_annotations(tmp_path, tiny, backend):
    gt, res = tiny
    bare = _without_length(gt)
    want = _stats(gt, res, backend)
    assert _stats(bare, res, backend) == want
    p = tmp_path / "gt.json"
    p.write_text(json.dumps(bare))  # the fast path
    assert _stats(str(p), res, backend) == want
    assert [v.length for v in ovis_jax.load_ground_truth(str(p)).videos] == [3, 2]


def test_ground_truth_without_length_refused_when_unclear(tiny):
    bare = _without_length(tiny[0])
    bare["annotations"][1]["segmentations"].append(None)
    with pytest.raises(FormatError) as e:
        ovis_jax.load_ground_truth(bare)
    assert str(e.value) == (
        "videos[0] (video_id 1): missing key 'length' (and no 'file_names' list), and its "
        "annotations disagree on the number of frames (annotations[0] has 3 segmentations, "
        "annotations[1] has 4)"
    )
    bare = _without_length(tiny[0])
    bare["videos"].append({"id": 7, "height": 10, "width": 10})
    with pytest.raises(FormatError, match=r"videos\[2\] \(video_id 7\).*no annotation of the"):
        ovis_jax.load_ground_truth(bare)


def _to_cocovid(gt: dict) -> dict:
    """The per-frame CocoVID layout of a per-video ground truth (as mmdetection 3.x writes)."""
    images, anns, image_id = [], [], {}
    for v in gt["videos"]:
        for t in range(v["length"]):
            image_id[v["id"], t] = len(images) + 1
            images.append({"id": len(images) + 1, "video_id": v["id"], "frame_id": t,
                           "height": v["height"], "width": v["width"]})  # fmt: skip
    for a in gt["annotations"]:
        for t, seg in enumerate(a["segmentations"]):
            if seg is not None:
                anns.append({"id": len(anns) + 1, "image_id": image_id[a["video_id"], t],
                             "video_id": a["video_id"], "instance_id": a["id"],
                             "category_id": a["category_id"], "segmentation": seg,
                             "area": a["areas"][t], "iscrowd": 0})  # fmt: skip
    return {"videos": [{"id": v["id"]} for v in gt["videos"]], "images": images[::-1],
            "annotations": anns, "categories": gt["categories"]}  # fmt: skip


@pytest.mark.parametrize("backend", BACKENDS)
def test_cocovid_detected_and_converted(tiny_ytvis, backend):
    gt, res = tiny_ytvis
    cocovid = _to_cocovid(gt)
    before = copy.deepcopy(cocovid)
    with pytest.raises(FormatError, match=r"per-frame CocoVID.*ovis_jax\.convert_cocovid"):
        ovis_jax.load_ground_truth(cocovid)
    converted = ovis_jax.convert_cocovid(cocovid)
    assert cocovid == before
    assert [v["length"] for v in converted["videos"]] == [3, 2]
    assert _stats(converted, res, backend) == _stats(gt, res, backend)


def test_uncompressed_rle_checked_and_compressed_by_pack(tmp_path, tiny, caplog):
    gt_dict, res = tiny
    gt = ovis_jax.load_ground_truth(gt_dict)
    plain = copy.deepcopy(res)
    seg = plain[1]["segmentations"][1]
    mask = mask_utils.decode(seg)
    runs, flat, prev, n = [], mask.flatten(order="F"), 0, 0
    for x in flat:  # uncompressed runs, with a zero-length run encode would never write
        if x != prev:
            runs.append(n)
            prev, n = x, 0
        n += 1
    runs += [n, 0, 0]
    plain[1]["segmentations"][1] = {"size": seg["size"], "counts": runs}
    src = tmp_path / "res.json"
    src.write_text(json.dumps(plain))
    rep = check_results(gt, str(src))
    assert rep.problems == (
        "results[1] (video_id 1), frame 1: uncompressed RLE ('counts' is a list): the official "
        "loadRes raises TypeError on it, so the server rejects the file; pack_results(..., "
        "compress=True) writes compressed strings",
    )
    with caplog.at_level(logging.WARNING, logger="ovis_jax"):
        pack_results(str(src), str(tmp_path / "keep.zip"))
    assert "uncompressed RLE" in caplog.text
    with zipfile.ZipFile(tmp_path / "keep.zip") as z:
        assert z.read("results.json") == src.read_bytes()
    pack_results(str(src), str(tmp_path / "fixed.zip"), compress=True)
    with zipfile.ZipFile(tmp_path / "fixed.zip") as z:
        fixed = json.loads(z.read("results.json"))
    want = mask_utils.encode(np.asfortranarray(mask))["counts"].decode()
    assert fixed[1]["segmentations"][1] == {"size": seg["size"], "counts": want}
    assert fixed == json.loads(json.dumps(res))
    assert check_results(gt, str(tmp_path / "fixed.zip")).ok
    assert json.loads(src.read_text()) == plain  # the input is untouched


def test_occlusion_string_says_per_frame_list(tiny):
    gt = tiny[0]
    gt["annotations"][0]["occlusion"] = "slight_occlusion"
    with pytest.raises(FormatError) as e:
        ovis_jax.load_ground_truth(gt)
    assert str(e.value) == (
        "annotations[0] (video_id 1): 'occlusion' must be a list of per-frame labels (one per "
        "frame, e.g. [\"no_occlusion\", null, ...]), got the string 'slight_occlusion'"
    )


def test_swapped_inputs_get_a_hint(tmp_path, tiny):
    gt_dict, res = tiny
    with pytest.raises(FormatError, match=r"results file .* swapped"):
        ovis_jax.load_ground_truth(res)
    gt = ovis_jax.load_ground_truth(gt_dict)
    with pytest.raises(FormatError, match=r"ground-truth file .* swapped"):
        ovis_jax.load_results(gt_dict, gt)
    foreign = copy.deepcopy(res)
    for r in foreign:
        r["video_id"] += 1000
    msg = (
        "results: none of the 2 video ids of the results (e.g. 1001) is a video of the ground "
        "truth (0 of 2 videos in common; its ids run 1..2): are the results for another "
        "dataset or split, or are the ground truth and the results swapped?"
    )
    with pytest.raises(FormatError) as e:
        ovis_jax.load_results(foreign, gt)
    assert str(e.value) == msg
    p = tmp_path / "foreign.json"
    p.write_text(json.dumps(foreign))
    assert check_results(gt, str(p)).problems == (msg,)
    # Some videos in common: the usual per-item message (with the --subset advice).
    foreign[0]["video_id"] = 1
    with pytest.raises(FormatError, match=r"results\[1\].*unknown video_id 1001"):
        ovis_jax.load_results(foreign, gt)


def test_regular_file_over_the_cap_is_refused_before_reading(tmp_path, tiny):
    gt = ovis_jax.load_ground_truth(tiny[0])
    p = tmp_path / "res.json"
    p.write_text(json.dumps(tiny[1]))
    assert stat.S_ISREG(os.stat(p).st_mode)
    with pytest.raises(FormatError, match="more than the cap of 10 bytes"):
        ovis_jax.load_results(str(p), gt, max_bytes=10)


def test_foreign_check_ignores_unhashable_video_ids(tiny):
    """Fuzz seed 164: a nested list as a video id must reach the usual per-item message."""
    gt_dict, res = tiny
    res[0]["video_id"] = [[1]]
    with pytest.raises(FormatError, match=r"results\[0\].*'video_id' must be an integer"):
        ovis_jax.load_results(res, ovis_jax.load_ground_truth(gt_dict))
