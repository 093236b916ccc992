"""A seeded fuzz test of the loaders and the evaluator (issue 9).

Every case starts from a small valid input (the tiny fixture of ``conftest.py`` or
``ovis_jax.testing.synthetic.random_dataset``, OVIS or YouTube-VIS format), converts some frames to
other input forms (uncompressed RLE ``counts`` lists, polygons, null frames), applies a few
seeded mutations to the ground truth and / or the results, hands them over either as parsed
Python objects or as files on disk (the compiled fast path; sometimes with raw byte-level
mutations of the JSON text), loads them and evaluates with a backend cycling through "cpu" and
"reference" (both on some cases, which must then agree to 1e-12; "jax" on a few).

A case passes when it ends either in success with every stat finite and in [-1, 1], or in
``ovis_jax.FormatError`` whose message names the item. Any other exception, a crash of the
process or a hang is a failure, reported with its seed and mutations. Two more oracles: the
caller's objects are never modified, and the same JSON document given as a file and as the
object ``json.loads`` makes of it has the same outcome (the two parsers agree).

The cases run in a subprocess (``python tests/test_fuzz.py --worker FIRST LAST``) so that a
segfault or a hang is reported with its seed instead of killing pytest.

    OVIS_JAX_FUZZ_CASES=10000 pytest -m slow tests/test_fuzz.py   # more cases (default 300)
    OVIS_JAX_FUZZ_SEED=123 pytest -m slow tests/test_fuzz.py      # another first seed (default 0)
    python tests/test_fuzz.py --case 4711                          # replay one case, with traceback
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import faulthandler
import gzip
import io
import json
import math
import os
import random
import reprlib
import subprocess
import sys
import tempfile
import traceback
import warnings
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import ovis_jax  # noqa: E402
import ovis_jax.testing.synthetic  # noqa: E402
from ovis_jax import FormatError  # noqa: E402

DEFAULT_CASES = 300
NUM_CASES = int(os.environ.get("OVIS_JAX_FUZZ_CASES", DEFAULT_CASES))
FIRST_SEED = int(os.environ.get("OVIS_JAX_FUZZ_SEED", 0))
CASE_TIMEOUT_S = float(os.environ.get("OVIS_JAX_FUZZ_TIMEOUT", 120))  # longer: a hang
JAX_EVERY = 97  # seeds divisible by this also run the "jax" backend

# What a FormatError's message must contain (at least one of): the item it names.
NAMES_ITEM = (
    "results[",
    "annotations[",
    "videos[",
    "categories[",
    "ground truth",
    "results",
    "file",
)

HUGE = [
    2**31,
    -(2**31),
    2**31 - 1,
    2**63,
    -(2**63),
    2**63 - 1,
    -(2**63) - 1,
    2**64,
    10**30,
    -(10**30),
    1e308,
    -1e308,
    -1,
    0,
    1.5,
    -0.0,
    5e-324,
    10**400,
]
ODD_STRINGS = ["\ud800", "\udfff\ud800", "😀🎥", "a\x00b", "\x00", "", "é", "\u202e", " " * 3]
BAD_RLE_CHARS = ["p", "~", " ", "/", "\x00", "é", "{", '"', "\\", "\x7f", "😀"]


# --------------------------------------------------------------------------------------------
# Bases


def _tiny_pair(ytvis: bool) -> tuple[dict, list]:
    import conftest

    gt, res = copy.deepcopy(conftest._TINY)
    if ytvis:
        for a in gt["annotations"]:
            del a["occlusion"]
    return gt, res


def _dense(rle: dict) -> np.ndarray:
    from pycocotools import mask as mask_utils

    r = {"size": rle["size"], "counts": rle["counts"].encode()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return np.asarray(mask_utils.decode(r), dtype=bool)


def _uncompressed(rle: dict) -> dict:
    flat = _dense(rle).ravel(order="F")
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    runs = np.diff(np.concatenate(([0], change, [flat.size]))).tolist()
    if flat.size and flat[0]:
        runs = [0, *runs]
    return {"size": list(rle["size"]), "counts": [int(r) for r in runs]}


def _polygon(rng: random.Random, h: int, w: int) -> list:
    polys = []
    for _ in range(rng.randint(1, 2)):
        n = rng.randint(3, 6)
        polys.append([round(rng.uniform(0, (w, h)[k % 2]), 2) for k in range(2 * n)])
    return polys


def _vary_forms(rng: random.Random, tracks: list, sizes: dict) -> None:
    """Converts some frames to uncompressed RLE, polygons or null (all valid forms)."""
    p = rng.choice([0.0, 0.2, 0.5])
    for t in tracks:
        segs = t.get("segmentations")
        if not isinstance(segs, list):
            continue
        h, w = sizes.get(t.get("video_id"), (None, None))
        for k, s in enumerate(segs):
            if rng.random() >= p or h is None:
                continue
            form = rng.choice(["uncompressed", "polygon", "null", "empty_polygon"])
            if form == "uncompressed" and isinstance(s, dict) and isinstance(s["counts"], str):
                segs[k] = _uncompressed(s)
            elif form == "polygon":
                segs[k] = _polygon(rng, h, w)
            elif form == "null":
                segs[k] = None
            elif form == "empty_polygon":
                segs[k] = []


def make_base(rng: random.Random) -> tuple[dict, list, str]:
    kind = rng.choice(["tiny", "tiny_ytvis", "random", "random", "random"])
    if kind.startswith("tiny"):
        gt, res = _tiny_pair(kind == "tiny_ytvis")
    else:
        gt, res = ovis_jax.testing.synthetic.random_dataset(
            seed=rng.randrange(2**31),
            num_videos=rng.randint(1, 3),
            num_categories=rng.randint(1, 4),
            max_results_per_video=rng.choice([0, 1, 3, 8]),
            occlusion=rng.random() < 0.5,
        )
        kind = f"random({'ovis' if 'occlusion' in str(gt['annotations'][:1]) else 'ytvis'})"
    sizes = {v["id"]: (v["height"], v["width"]) for v in gt["videos"]}
    _vary_forms(rng, gt["annotations"], sizes)
    _vary_forms(rng, res, sizes)
    return gt, res, kind


# --------------------------------------------------------------------------------------------
# Object mutations: each takes (rng, root) and returns the new root (usually the same object,
# edited in place) and a short description.


def _paths(root: Any, limit: int = 20000) -> list[tuple]:
    """Every path (tuple of keys / indices) in a JSON-like object, the root first."""
    out: list[tuple] = []
    stack: list[tuple[tuple, Any]] = [((), root)]
    while stack and len(out) < limit:
        path, x = stack.pop()
        out.append(path)
        if isinstance(x, dict):
            stack.extend(((*path, k), v) for k, v in x.items())
        elif isinstance(x, list):
            stack.extend(((*path, i), v) for i, v in enumerate(x))
    return out


def _get(root: Any, path: tuple) -> Any:
    for k in path:
        root = root[k]
    return root


def _set(root: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    _get(root, path[:-1])[path[-1]] = value
    return root


def _pick(rng: random.Random, root: Any, want=None) -> tuple | None:
    paths = [p for p in _paths(root) if want is None or want(p, _get(root, p))]
    return rng.choice(paths) if paths else None


def _show_path(path: tuple) -> str:
    return "".join(f"[{k!r}]" for k in path)


def _other_type(rng: random.Random, x: Any) -> Any:
    choices = [7, "7", 7.0, True, False, None, [], {}, [1, 2], {"a": 1}, "", 0]
    choices = [c for c in choices if type(c) is not type(x)]
    return copy.deepcopy(rng.choice(choices))


def m_delete_key(rng, root):
    p = _pick(rng, root, lambda p, v: isinstance(v, dict) and v)
    if p is None:
        return root, "delete_key(none)"
    d = _get(root, p)
    k = rng.choice(list(d))
    del d[k]
    return root, f"delete_key{_show_path((*p, k))}"


def m_swap_type(rng, root):
    p = _pick(rng, root, lambda p, v: len(p) > 0)
    if p is None:
        return root, "swap_type(none)"
    v = _other_type(rng, _get(root, p))
    return _set(root, p, v), f"swap_type{_show_path(p)}={v!r}"


def m_huge_number(rng, root):
    p = _pick(rng, root, lambda p, v: p and isinstance(v, (int, float)) and not isinstance(v, bool))
    if p is None:
        p = _pick(rng, root, lambda p, v: len(p) > 0)
    if p is None:
        return root, "huge_number(none)"
    v = rng.choice(HUGE)
    return _set(root, p, v), f"huge_number{_show_path(p)}={v!r}"


def m_id_number(rng, root):
    """A huge / negative / fractional number in an id field."""
    keys = ("id", "video_id", "category_id")
    p = _pick(rng, root, lambda p, v: p and p[-1] in keys)
    if p is None:
        return root, "id_number(none)"
    v = rng.choice([*HUGE, str(rng.choice(HUGE)), 1.0, 2.5, True])
    return _set(root, p, v), f"id_number{_show_path(p)}={v!r}"


def _rle_paths(root):
    return [
        p
        for p in _paths(root)
        if p and p[-1] == "counts" and isinstance(_get(root, p), (str, list))
    ]


def m_corrupt_rle(rng, root):
    paths = [p for p in _rle_paths(root) if isinstance(_get(root, p), str)]
    if not paths:
        return root, "corrupt_rle(none)"
    p = rng.choice(paths)
    s = _get(root, p)
    how = rng.choice(["bad_char", "truncate", "continuation", "extra", "empty", "only_cont"])
    if how == "bad_char":
        i = rng.randrange(len(s) + 1)
        s = s[:i] + rng.choice(BAD_RLE_CHARS) + s[i:]
    elif how == "truncate":
        s = s[: rng.randrange(len(s) + 1)]
    elif how == "continuation":
        s = s + rng.choice("PQ_`io")  # value bit 0x20 set: "more follows"
    elif how == "extra":
        s = s + "".join(rng.choice("0123456789:;<=>?@ABCDEFGHIJKLMNO") for _ in range(3))
    elif how == "empty":
        s = ""
    else:
        s = "o" * rng.randint(1, 20)
    return _set(root, p, s), f"corrupt_rle/{how}{_show_path(p)}={s[:40]!r}"


def m_corrupt_counts(rng, root):
    paths = [p for p in _rle_paths(root) if isinstance(_get(root, p), list)]
    if not paths:
        return root, "corrupt_counts(none)"
    p = rng.choice(paths)
    c = list(_get(root, p))
    how = rng.choice(["negative", "sum", "float", "huge", "empty", "str", "bool"])
    i = rng.randrange(len(c)) if c else 0
    if not c:
        c = [1]
    if how == "negative":
        c[i] = -c[i] - 1
        c.append(c[i] * -1 + 1)
    elif how == "sum":
        c[i] += rng.choice([1, -1, 1000])
    elif how == "float":
        c[i] = c[i] + 0.5
    elif how == "huge":
        c[i] = rng.choice(HUGE)
    elif how == "empty":
        c = []
    elif how == "str":
        c[i] = str(c[i])
    else:
        c[i] = True
    return _set(root, p, c), f"corrupt_counts/{how}{_show_path(p)}"


def m_size_mismatch(rng, root):
    """RLE sizes, video sizes, lengths and frame counts that disagree with each other."""
    how = rng.choice(["rle_size", "video_dim", "length", "frames", "file_names"])
    if how == "rle_size":
        p = _pick(rng, root, lambda p, v: p and p[-1] == "size" and isinstance(v, list))
        if p is None:
            return root, "size_mismatch(none)"
        s = list(_get(root, p))
        if len(s) == 2 and all(type(x) is int for x in s):
            s[rng.randrange(2)] += rng.choice([1, -1, 100])
        if rng.random() < 0.2:
            s = [*s, 1] if rng.random() < 0.5 else s[:1]
        return _set(root, p, s), f"size_mismatch/rle_size{_show_path(p)}={s}"
    if how in ("video_dim", "length", "file_names"):
        if not isinstance(root, dict) or not isinstance(root.get("videos"), list):
            return root, "size_mismatch(not gt)"
        vids = [v for v in root["videos"] if isinstance(v, dict)]
        if not vids:
            return root, "size_mismatch(no video)"
        v = rng.choice(vids)
        if how == "video_dim":
            k = rng.choice(["height", "width"])
            v[k] = rng.choice([0, 1, v.get(k, 1) + 1 if isinstance(v.get(k), int) else 1, 10**9])
            return root, f"size_mismatch/{k}={v[k]}"
        if how == "length":
            v["length"] = rng.choice([0, 1, 2, 50, (v.get("length") or 0) + 1])
            return root, f"size_mismatch/length={v['length']}"
        v.pop("length", None)
        fn = v.get("file_names")
        if isinstance(fn, list) and rng.random() < 0.5:
            v["file_names"] = fn[:-1]
        else:
            v.pop("file_names", None)
        return root, "size_mismatch/file_names"
    p = _pick(
        rng,
        root,
        lambda p, v: p and p[-1] in ("segmentations", "areas", "occlusion") and isinstance(v, list),
    )
    if p is None:
        return root, "size_mismatch(none)"
    lst = _get(root, p)
    if lst and rng.random() < 0.5:
        lst.pop()
    else:
        lst.append(copy.deepcopy(lst[-1]) if lst else None)
    return root, f"size_mismatch/frames{_show_path(p)}"


def m_empty_list(rng, root):
    p = _pick(rng, root, lambda p, v: isinstance(v, list))
    if p is None:
        return root, "empty_list(none)"
    return _set(root, p, []), f"empty_list{_show_path(p)}"


def _nested(depth: int) -> list:
    x: list = []
    for _ in range(depth):
        x = [x]
    return x


def m_deep_nesting(rng, root):
    p = _pick(rng, root, lambda p, v: True)
    depth = rng.choice([3000, 200])
    return _set(root, p, _nested(depth)), f"deep_nesting({depth}){_show_path(p)}"


def m_odd_unicode(rng, root):
    s = rng.choice(ODD_STRINGS)
    p = _pick(rng, root, lambda p, v: p and isinstance(v, str))
    if p is None or rng.random() < 0.3:
        # a string where a number is expected, or an odd key
        p = _pick(rng, root, lambda p, v: isinstance(v, dict))
        if p is None:
            return root, "odd_unicode(none)"
        _get(root, p)[s] = s
        return root, f"odd_unicode_key{_show_path(p)}[{s!r}]"
    return _set(root, p, s), f"odd_unicode{_show_path(p)}={s!r}"


def m_duplicate_id(rng, root):
    groups = []
    if isinstance(root, dict):
        groups = [root.get(k) for k in ("videos", "categories", "annotations")]
    groups = [g for g in groups if isinstance(g, list) and len(g) >= 2]
    if not groups:
        return root, "duplicate_id(none)"
    g = rng.choice(groups)
    i, j = rng.sample(range(len(g)), 2)
    if isinstance(g[i], dict) and isinstance(g[j], dict) and "id" in g[j]:
        g[i]["id"] = g[j]["id"]
    return root, f"duplicate_id[{i}]=[{j}]"


def m_duplicate_item(rng, root):
    lists = [root] if isinstance(root, list) else []
    if isinstance(root, dict):
        lists = [v for v in root.values() if isinstance(v, list)]
    lists = [x for x in lists if x]
    if not lists:
        return root, "duplicate_item(none)"
    x = rng.choice(lists)
    if rng.random() < 0.3:
        x.extend(copy.deepcopy(x))
        return root, "duplicate_item(all)"
    i = rng.randrange(len(x))
    x.insert(rng.randrange(len(x) + 1), copy.deepcopy(x[i]))
    return root, f"duplicate_item[{i}]"


def m_polygon(rng, root):
    """Odd polygons: out of range, odd length, too short, non-finite, nested wrongly."""
    p = _pick(rng, root, lambda p, v: len(p) >= 2 and p[-2] == "segmentations")
    if p is None:
        return root, "polygon(none)"
    poly = [[1.0, 1.0, 5.0, 1.0, 5.0, 5.0, 1.0, 5.0]]
    how = rng.choice(["far", "odd", "short", "nan", "flat", "str", "empty_inner", "many", "big"])
    if how == "far":
        poly[0][rng.randrange(8)] = rng.choice([1e6, -1e6, 1e308, 2**63])
    elif how == "odd":
        poly[0] = poly[0][:7]
    elif how == "short":
        poly[0] = poly[0][: rng.choice([0, 2, 4])]
    elif how == "nan":
        poly[0][rng.randrange(8)] = rng.choice([math.nan, math.inf, -math.inf])
    elif how == "flat":
        poly = poly[0]
    elif how == "str":
        poly[0][0] = "1"
    elif how == "empty_inner":
        poly = [[]]
    elif how == "many":
        poly = poly * 50
    else:
        poly = [[0, 0, 20, 0, 20, 20, 0, 20]]
    return _set(root, p, poly), f"polygon/{how}{_show_path(p)}"


def m_null_frames(rng, root):
    p = _pick(rng, root, lambda p, v: p and p[-1] == "segmentations" and isinstance(v, list))
    if p is None:
        return root, "null_frames(none)"
    segs = _get(root, p)
    for k in range(len(segs)):
        if rng.random() < 0.7:
            segs[k] = None
    return root, f"null_frames{_show_path(p)}"


def m_rename_key(rng, root):
    p = _pick(rng, root, lambda p, v: isinstance(v, dict) and v)
    if p is None:
        return root, "rename_key(none)"
    d = _get(root, p)
    k = rng.choice(list(d))
    new = rng.choice([k[:-1] if isinstance(k, str) and k else "x", str(k).upper(), f" {k}"])
    d[new] = d.pop(k)
    return root, f"rename_key{_show_path(p)}[{k!r}->{new!r}]"


def m_wrap(rng, root):
    how = rng.choice(["annotations", "list", "number", "null"])
    if how == "annotations":
        return {"annotations": root}, "wrap/annotations_object"
    if how == "list":
        return [root], "wrap/list"
    return {"number": 3, "null": None}[how], f"wrap/{how}"


def m_bytes_counts(rng, root):
    """Python-object only: counts as bytes (what pycocotools returns), or a tuple for a list."""
    paths = _rle_paths(root)
    if not paths:
        return root, "bytes_counts(none)"
    p = rng.choice(paths)
    c = _get(root, p)
    v = c.encode("utf-8", "surrogatepass") if isinstance(c, str) else tuple(c)
    return _set(root, p, v), f"bytes_counts{_show_path(p)}"


def m_extra_key(rng, root):
    p = _pick(rng, root, lambda p, v: isinstance(v, dict))
    if p is None:
        return root, "extra_key(none)"
    v = rng.choice([None, _nested(50), {"x": [1, {"y": math.nan}]}, "z" * 1000, 2**70])
    _get(root, p)["extra_" + str(rng.randrange(9))] = v
    return root, f"extra_key{_show_path(p)}"


def m_score(rng, root):
    p = _pick(rng, root, lambda p, v: p and p[-1] == "score")
    if p is None:
        return root, "score(none)"
    v = rng.choice([math.nan, math.inf, -math.inf, -1.0, 2.0, 0, 1, 1e-300, "0.5", True, 10**400])
    return _set(root, p, v), f"score{_show_path(p)}={v!r}"


def m_occlusion(rng, root):
    p = _pick(rng, root, lambda p, v: len(p) >= 2 and p[-2] == "occlusion")
    if p is None:
        p = _pick(rng, root, lambda p, v: p and p[-1] == "occlusion")
    if p is None:
        return root, "occlusion(none)"
    v = rng.choice(["No_occlusion", "", None, 0, 1.0, "severe", ["no_occlusion"], "\ud800"])
    return _set(root, p, v), f"occlusion{_show_path(p)}={v!r}"


OBJECT_MUTATIONS = {
    f.__name__[2:]: f
    for f in (
        m_delete_key,
        m_swap_type,
        m_huge_number,
        m_id_number,
        m_corrupt_rle,
        m_corrupt_counts,
        m_size_mismatch,
        m_empty_list,
        m_deep_nesting,
        m_odd_unicode,
        m_duplicate_id,
        m_duplicate_item,
        m_polygon,
        m_null_frames,
        m_rename_key,
        m_wrap,
        m_extra_key,
        m_score,
        m_occlusion,
    )
}
PYTHON_ONLY_MUTATIONS = {"bytes_counts": m_bytes_counts}


# --------------------------------------------------------------------------------------------
# Raw JSON text mutations (files only): (rng, bytes) -> (bytes, description)


def r_nan_literal(rng, raw):
    import re

    nums = [m.span() for m in re.finditer(rb"(?<=[:\[,])\s*-?\d+(\.\d+)?([eE][-+]?\d+)?", raw)]
    if not nums:
        return raw, "nan_literal(none)"
    a, b = rng.choice(nums)
    lit = rng.choice([b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e999", b"nan", b"inf"])
    return raw[:a] + lit + raw[b:], f"nan_literal@{a}={lit.decode()}"


def r_byte_flip(rng, raw):
    b = bytearray(raw)
    where = []
    for _ in range(rng.randint(1, 3)):
        if not b:
            break
        i = rng.randrange(len(b))
        b[i] = rng.choice([b[i] ^ (1 << rng.randrange(8)), rng.randrange(256)])
        where.append(i)
    return bytes(b), f"byte_flip@{where}"


def r_truncate(rng, raw):
    n = rng.randrange(len(raw) + 1)
    return raw[:n], f"truncate@{n}"


def r_deep(rng, raw):
    import re

    spots = [m.end() for m in re.finditer(rb":\s*", raw)]
    depth = rng.choice([3000, 2000, 100_000])
    if not spots:
        return b"[" * depth + b"]" * depth, f"deep_raw({depth})"
    i = rng.choice(spots)
    j = i
    # replace the value after the colon up to the next ',' or '}' at depth 0 (approximately:
    # up to the next ',' or '}'; a broken document is fine too)
    while j < len(raw) and raw[j : j + 1] not in (b",", b"}"):
        j += 1
    return raw[:i] + b"[" * depth + b"]" * depth + raw[j:], f"deep_raw({depth})@{i}"


def r_surrogate(rng, raw):
    import re

    strings = [m.span() for m in re.finditer(rb'"[a-z_ ]+"', raw)]
    lit = rng.choice(
        [
            rb'"\ud800"',
            rb'"\udfff"',
            rb'"\ud83d\ude00"',
            rb'"\u0000"',
            b'"\xff\xfe"',
            b'"\xed\xa0\x80"',
        ]
    )
    if not strings:
        return raw, "surrogate(none)"
    a, b = rng.choice(strings)
    return raw[:a] + lit + raw[b:], f"surrogate@{a}={lit!r}"


def r_prefix(rng, raw):
    pre = rng.choice([b"\xef\xbb\xbf", b" \n\t", b"\x00", b"//c\n", b"\xff\xfe"])
    return pre + raw, f"prefix={pre!r}"


def r_suffix(rng, raw):
    suf = rng.choice([b"\x00", b" garbage", b"]", b"}", b"\n\n", b",", raw[:10]])
    return raw + suf, f"suffix={suf!r}"


def r_duplicate_key(rng, raw):
    import re

    keys = [m.start() for m in re.finditer(rb'"(id|video_id|category_id|score)":', raw)]
    if not keys:
        return raw, "duplicate_key(none)"
    i = rng.choice(keys)
    k = raw[i : raw.index(b":", i) + 1]
    val = rng.choice([b"1", b"2", b'"x"', b"null", b"999"])
    return raw[:i] + k + val + b"," + raw[i:], f"duplicate_key@{i}={k!r}{val!r}"


def r_whole(rng, raw):
    new = rng.choice([b'"x"', b"3", b"null", b"{}", b"[]", b"", b"true", b"[{}]", b"[null]"])
    return new, f"whole={new!r}"


RAW_MUTATIONS = {
    f.__name__[2:]: f
    for f in (
        r_whole,
        r_nan_literal,
        r_byte_flip,
        r_truncate,
        r_deep,
        r_surrogate,
        r_prefix,
        r_suffix,
        r_duplicate_key,
    )
}


# --------------------------------------------------------------------------------------------
# A case


@dataclasses.dataclass
class Case:
    seed: int
    base: str
    gt: Any
    res: Any
    mode: str  # "object" or "file"
    mutations: list
    gt_raw: bytes | None = None  # set in file mode
    res_raw: bytes | None = None
    raw_mutated: bool = False
    deep: bool = False
    python_only: bool = False  # a Python-only value (bytes, tuple): no JSON twin to compare
    backends: tuple = ()


def _dumps(x: Any) -> bytes | None:
    try:
        return json.dumps(x).encode("utf-8", "surrogatepass")
    except (TypeError, ValueError, RecursionError):
        return None


def make_case(seed: int) -> Case:
    rng = random.Random(seed)
    gt, res, base = make_base(rng)
    mutations: list[str] = []
    n = rng.choice([0, 1, 1, 1, 1, 2, 2, 3])
    mode = rng.choice(["object", "file"])
    names = sorted(OBJECT_MUTATIONS)
    if mode == "object":
        names += sorted(PYTHON_ONLY_MUTATIONS)
    deep = python_only = False
    for _ in range(n):
        target = rng.choice(["gt", "res", "res"])
        name = rng.choice(names)
        fn = OBJECT_MUTATIONS.get(name) or PYTHON_ONLY_MUTATIONS[name]
        try:
            if target == "gt":
                gt, what = fn(rng, gt)
            else:
                res, what = fn(rng, res)
        except RecursionError:  # e.g. copying an earlier mutation's 3,000 nested lists
            what = f"{name}(too deep)"
        deep |= name == "deep_nesting"
        python_only |= name in PYTHON_ONLY_MUTATIONS
        mutations.append(f"{target}:{what}")
    case = Case(seed, base, gt, res, mode, mutations, deep=deep, python_only=python_only)
    if mode == "file":
        case.gt_raw, case.res_raw = _dumps(gt), _dumps(res)
        if case.gt_raw is None or case.res_raw is None:
            case.mode = "object"  # not serialisable (e.g. 3,000 nested lists): keep the objects
        elif rng.random() < 0.35:
            which = rng.choice(["gt", "res", "res"])
            name = rng.choice(sorted(RAW_MUTATIONS))
            raw = case.gt_raw if which == "gt" else case.res_raw
            raw, what = RAW_MUTATIONS[name](rng, raw)
            if which == "gt":
                case.gt_raw = raw
            else:
                case.res_raw = raw
            case.raw_mutated = True
            mutations.append(f"{which}:raw:{what}")
    r = seed % 6
    backends = [("cpu",), ("reference",), ("cpu", "reference")][r % 3]
    if seed % JAX_EVERY == 0:
        backends = (*backends, "jax")
    case.backends = backends
    return case


# --------------------------------------------------------------------------------------------
# Running a case


class Failure(Exception):
    pass


_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother, _SHORT.maxlist, _SHORT.maxdict = 4, 80, 80, 4, 8


def short(x: Any) -> str:
    try:
        return _SHORT.repr(x)
    except RecursionError:
        return "<too deep to show>"


def _check_format_error(e: FormatError, stage: str) -> None:
    msg = str(e)
    if not any(tok in msg for tok in NAMES_ITEM):
        raise Failure(f"FormatError at {stage} does not name the item: {msg!r}")


def _check_stats(result: Any, backend: str) -> dict:
    stats = dict(result.stats)
    for k, v in stats.items():
        if not isinstance(v, float) or not math.isfinite(v) or not -1.0 <= v <= 1.0:
            raise Failure(f"{backend}: stat {k} = {v!r} not a finite number in [-1, 1]")
    return stats


def _outcome(gt_src: Any, res_src: Any, backends: tuple) -> tuple[str, Any]:
    """("error", stage + message) or ("ok", {backend: stats}); other exceptions propagate."""
    try:
        gt = ovis_jax.load_ground_truth(gt_src)
    except FormatError as e:
        _check_format_error(e, "load_ground_truth")
        return "error", f"load_ground_truth: {e}"
    try:
        res = ovis_jax.load_results(res_src, gt)
    except FormatError as e:
        _check_format_error(e, "load_results")
        return "error", f"load_results: {e}"
    out = {}
    for b in backends:
        try:
            result = ovis_jax.evaluate(gt, res, backend=b)
        except FormatError as e:
            _check_format_error(e, f"evaluate({b})")
            return "error", f"evaluate: {e}"
        out[b] = _check_stats(result, b)
    stats = list(out.values())
    for b, s in zip(list(out)[1:], stats[1:], strict=True):
        for k in s:
            if abs(s[k] - stats[0][k]) > 1e-12:
                raise Failure(f"backends disagree on {k}: {stats[0][k]!r} vs {b}: {s[k]!r}")
    return "ok", out


def _same(a: Any, b: Any) -> bool:
    try:
        return repr(a) == repr(b)
    except RecursionError:
        return True


def run_case(seed: int, tmp: Path) -> tuple[str, str]:
    """Runs one case; returns (outcome, detail). Raises Failure (or anything) on a failure."""
    case = make_case(seed)
    if case.mode == "file":
        gt_src, res_src = tmp / f"gt{seed}.json", tmp / f"res{seed}.json"
        gt_src.write_bytes(case.gt_raw)
        res_src.write_bytes(case.res_raw)
        gt_src, res_src = str(gt_src), str(res_src)
    else:
        gt_src, res_src = case.gt, case.res
    before = None if case.deep else (repr(case.gt), repr(case.res))
    kind, detail = _outcome(gt_src, res_src, case.backends)
    if before is not None and (repr(case.gt), repr(case.res)) != before:
        raise Failure("the caller's objects were modified")
    # The other parser on the same JSON document must agree (file vs the object json.loads
    # makes of it; objects with Python-only values are compared after a JSON round trip).
    gt_text = case.gt_raw if case.mode == "file" else _dumps(case.gt)
    res_text = case.res_raw if case.mode == "file" else _dumps(case.res)
    if gt_text is not None and res_text is not None and not case.python_only:
        try:
            gt_obj = json.loads(gt_text)
            res_obj = json.loads(res_text)
        except (ValueError, RecursionError):
            gt_obj = res_obj = None  # not a JSON document: the file path alone decides
        if isinstance(gt_obj, str) or isinstance(res_obj, str):
            gt_obj = None  # a JSON string as an object would be read as a path
        if gt_obj is not None:
            if case.mode == "file":
                other = _outcome(gt_obj, res_obj, case.backends[:1])
            else:
                (tmp / "gt_rt.json").write_bytes(gt_text)
                (tmp / "res_rt.json").write_bytes(res_text)
                other = _outcome(
                    str(tmp / "gt_rt.json"), str(tmp / "res_rt.json"), case.backends[:1]
                )
            mine = (kind, detail)
            if other[0] != mine[0]:
                raise Failure(
                    f"file and object paths disagree: {case.mode}: {mine[0]} {short(mine[1])}; "
                    f"other: {other[0]} {short(other[1])}"
                )
            if kind == "ok":
                b = case.backends[0]
                for k, v in detail[b].items():
                    if abs(v - other[1][b][k]) > 1e-12:
                        raise Failure(f"file and object paths give different {k}")
    return kind, detail if kind == "error" else "ok"


def describe(seed: int) -> str:
    try:
        case = make_case(seed)
    except Exception as e:
        return f"seed {seed}: (cannot rebuild the case: {e!r})"
    lines = [
        f"seed {seed}: base={case.base} mode={case.mode} backends={case.backends}",
        f"  mutations: {case.mutations}",
        f"  replay: python tests/test_fuzz.py --case {seed}",
    ]
    if case.mode == "file" and case.raw_mutated:
        lines.append(f"  gt bytes: {case.gt_raw[:300]!r}")
        lines.append(f"  results bytes: {case.res_raw[:300]!r}")
    else:
        lines.append(f"  gt: {short(case.gt)}")
        lines.append(f"  results: {short(case.res)}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# The worker (a subprocess) and its driver


def worker(first: int, last: int) -> None:
    """Runs seeds [first, last); one line per event on stdout:
    ``S seed`` (started), ``F seed <json>`` (failed), ``D seed kind`` (done), ``END``."""
    import logging

    logging.getLogger("ovis_jax").setLevel(logging.ERROR)
    warnings.simplefilter("ignore")
    faulthandler.enable()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for seed in range(first, last):
            print(f"S {seed}", flush=True)
            timeout = CASE_TIMEOUT_S * (3 if seed % JAX_EVERY == 0 else 1)
            faulthandler.dump_traceback_later(timeout, exit=True)
            try:
                _selftest_fault(seed)
                kind, _ = run_case(seed, tmp)
            except Failure as e:
                print(f"F {seed} {json.dumps({'type': 'Failure', 'msg': str(e)})}", flush=True)
                continue
            except BaseException as e:  # everything else is a failure
                tb = traceback.extract_tb(e.__traceback__)
                frames = [f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in tb[-4:]]
                msg = {"type": type(e).__name__, "msg": str(e)[:500], "where": frames}
                print(f"F {seed} {json.dumps(msg)}", flush=True)
                continue
            finally:
                faulthandler.cancel_dump_traceback_later()
                for p in tmp.iterdir():
                    p.unlink()
            print(f"D {seed} {kind}", flush=True)
    print("END", flush=True)


def _selftest_fault(seed: int) -> None:
    """OVIS_JAX_FUZZ_SELFTEST=crash:SEED or hang:SEED: fakes a segfault or a hang (tests the
    driver)."""
    what, _, at = os.environ.get("OVIS_JAX_FUZZ_SELFTEST", "").partition(":")
    if at and int(at) == seed:
        if what == "crash":
            import ctypes

            ctypes.string_at(0)  # a real SIGSEGV
        elif what == "hang":
            import time

            time.sleep(3600)


def run_batch(first: int, last: int) -> tuple[list[dict], dict]:
    """Runs seeds [first, last) in subprocesses, restarting after a crash or a hang."""
    failures: list[dict] = []
    counts = {"ok": 0, "error": 0, "failed": 0}
    start = first
    while start < last:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(start), str(last)]
        budget = (last - start) * CASE_TIMEOUT_S + 300
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=budget, cwd=str(HERE.parent)
        )
        started = None
        for line in proc.stdout.splitlines():
            tag, _, rest = line.partition(" ")
            if tag == "S":
                started = int(rest)
            elif tag == "D":
                seed, kind = rest.split(" ", 1)
                counts[kind] += 1
                started = None
            elif tag == "F":
                seed, info = rest.split(" ", 1)
                failures.append({"seed": int(seed), **json.loads(info)})
                counts["failed"] += 1
                started = None
        if "END" in proc.stdout.splitlines():
            break
        if started is None:  # died between cases (or at start-up)
            failures.append({"seed": start, "type": "WorkerDied", "msg": proc.stderr[-2000:]})
            break
        kind = "Hang" if "Timeout" in proc.stderr else f"Crash(rc={proc.returncode})"
        failures.append({"seed": started, "type": kind, "msg": proc.stderr[-1500:]})
        counts["failed"] += 1
        start = started + 1
    return failures, counts


def run_many(first: int, n: int) -> tuple[list[dict], dict]:
    jobs = max(1, min(os.cpu_count() or 1, 4)) if n > DEFAULT_CASES else 1
    step = max(1, min(500, -(-n // jobs)))
    chunks = [(s, min(s + step, first + n)) for s in range(first, first + n, step)]
    failures: list[dict] = []
    counts = {"ok": 0, "error": 0, "failed": 0}
    with ThreadPoolExecutor(jobs) as pool:
        for f, c in pool.map(lambda c: run_batch(*c), chunks):
            failures += f
            for k in counts:
                counts[k] += c[k]
    return failures, counts


def report(failures: list[dict]) -> str:
    classes: dict[tuple, list[dict]] = {}
    for f in failures:
        key = (f["type"], tuple(f.get("where", ()))[-1:] or f["msg"][:60])
        classes.setdefault(key, []).append(f)
    out = [f"{len(failures)} failing case(s) in {len(classes)} class(es):"]
    for (typ, where), fs in classes.items():
        seeds = [f["seed"] for f in fs]
        out.append(f"\n== {typ} at {where} ({len(fs)} case(s), seeds {seeds[:20]})")
        out.append(f"   message: {fs[0]['msg'][:600]}")
        out.append("   " + describe(fs[0]["seed"]).replace("\n", "\n   "))
    return "\n".join(out)


@pytest.mark.slow
def test_fuzz():
    failures, counts = run_many(FIRST_SEED, NUM_CASES)
    print(f"fuzz: seeds {FIRST_SEED}..{FIRST_SEED + NUM_CASES - 1}: {counts}")
    assert not failures, report(failures)
    # The mix must exercise both outcomes, else the fuzzer tests nothing.
    assert counts["ok"] > NUM_CASES // 10 and counts["error"] > NUM_CASES // 10, counts


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["crash", "hang"])
def test_driver_reports_crash_and_hang(monkeypatch, fault):
    """A segfault or a hang in a case is a failure with its seed; the later cases still run."""
    monkeypatch.setenv("OVIS_JAX_FUZZ_SELFTEST", f"{fault}:2")
    # Long enough for a cold worker restarted after the hang (imports, numba's cache) to
    # finish the next case on a loaded 2-core machine; short enough to keep the test quick.
    monkeypatch.setenv("OVIS_JAX_FUZZ_TIMEOUT", "15")
    failures, counts = run_batch(1, 4)
    assert [f["seed"] for f in failures] == [2], failures
    assert failures[0]["type"] == ("Hang" if fault == "hang" else "Crash(rc=-11)"), failures
    assert counts["ok"] + counts["error"] == 2, counts


def test_cases_are_reproducible():
    for seed in (0, 1, 17, 96):
        a, b = make_case(seed), make_case(seed)
        assert a.mutations == b.mutations and a.mode == b.mode
        assert (a.gt_raw, a.res_raw) == (b.gt_raw, b.res_raw)


# --------------------------------------------------------------------------------------------
# Named regression cases (issue 9)


def _ok(gt: Any, res: Any, backend: str = "cpu"):
    result = ovis_jax.evaluate(
        ovis_jax.load_ground_truth(gt), ovis_jax.load_results(res, ovis_jax.load_ground_truth(gt)),
        backend=backend,
    )  # fmt: skip
    _check_stats(result, backend)
    return result


def _format_error(fn, *args, expect: tuple[str, ...] = ()) -> str:
    with pytest.raises(FormatError) as info:
        fn(*args)
    msg = str(info.value)
    _check_format_error(info.value, fn.__name__)
    for part in expect:
        assert part in msg, f"{part!r} not in {msg!r}"
    return msg


@pytest.fixture
def tiny_pair():
    return _tiny_pair(False)


def test_category_id_2_63_in_gt(tiny_pair):
    gt, _ = tiny_pair
    gt["categories"][1]["id"] = 9223372036854775808
    _format_error(ovis_jax.load_ground_truth, gt, expect=("categories[1]",))


@pytest.mark.parametrize("key", ["id", "video_id"])
def test_ids_below_minus_2_63(tiny_pair, key):
    gt, _ = tiny_pair
    gt["annotations"][0][key] = -(2**63) - 1
    _format_error(ovis_jax.load_ground_truth, gt, expect=("annotations[0]",))


def test_video_id_below_minus_2_63(tiny_pair):
    gt, _ = tiny_pair
    gt["videos"][0]["id"] = -(2**63) - 1
    _format_error(ovis_jax.load_ground_truth, gt, expect=("videos[0]",))


def test_results_file_of_2000_brackets(tmp_path, tiny_pair):
    gt, _ = tiny_pair
    p = tmp_path / "res.json"
    p.write_bytes(b"[" * 2000 + b"]" * 2000)
    _format_error(ovis_jax.load_results, str(p), ovis_jax.load_ground_truth(gt))
    # and as an object
    _format_error(ovis_jax.load_results, _nested(2000), ovis_jax.load_ground_truth(gt))


def _in_subprocess(code: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Runs code in a fresh interpreter under a 4 GiB address-space limit (the huge-video cases
    must not allocate a frame's worth of memory)."""
    pre = (
        "import resource; resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))\n"
        f"import sys; sys.path.insert(0, {str(HERE)!r})\n"
    )
    return subprocess.run(
        [sys.executable, "-c", pre + code],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=str(HERE.parent),
    )


def test_huge_video_polygon_gt():
    """A 20 x 1,000,000,000 video with a polygon ground truth: a FormatError (frame too large),
    never an attempt to rasterise 2e10 pixels."""
    code = """
import ovis_jax
gt = {"videos": [{"id": 1, "height": 20, "width": 1000000000, "length": 1}],
      "categories": [{"id": 1, "name": "a"}],
      "annotations": [{"id": 1, "video_id": 1, "category_id": 1, "iscrowd": 0,
                       "segmentations": [[[0, 0, 10, 0, 10, 10]]], "areas": [50]}]}
try:
    ovis_jax.load_ground_truth(gt)
    print("OK")
except ovis_jax.FormatError as e:
    print("FormatError", e)
"""
    proc = _in_subprocess(code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("FormatError videos[0]"), proc.stdout


def test_video_of_3_billion_pixels():
    code = """
import ovis_jax
gt = {"videos": [{"id": 1, "height": 1, "width": 3000000000, "length": 1}],
      "categories": [{"id": 1, "name": "a"}],
      "annotations": [{"id": 1, "video_id": 1, "category_id": 1, "iscrowd": 0,
                       "segmentations": [{"size": [1, 3000000000], "counts": [3000000000]}],
                       "areas": [0]}]}
try:
    ovis_jax.load_ground_truth(gt)
    print("OK")
except ovis_jax.FormatError as e:
    print("FormatError", e)
"""
    proc = _in_subprocess(code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("FormatError videos[0]"), proc.stdout


@pytest.mark.parametrize("how", ["object", "file"])
def test_category_name_lone_surrogate(tmp_path, tiny_pair, how):
    gt, res = tiny_pair
    gt["categories"][0]["name"] = "\ud800"
    if how == "file":
        p = tmp_path / "gt.json"
        p.write_text(json.dumps(gt))  # ensure_ascii: the escape "\ud800" in the text
        gt = str(p)
    result = _ok(gt, res)
    assert result.category_names[0] == "\ud800"
    assert result.per_category[0]["name"] == "\ud800"


def test_gt_empty_annotations_succeeds(tiny_pair):
    gt, res = tiny_pair
    gt["annotations"] = []
    result = _ok(gt, res)
    assert all(v == -1 for v in result.stats.values())


def test_gt_empty_annotations_warns(tiny_pair):
    gt, res = tiny_pair
    gt["annotations"] = []
    result = _ok(gt, res)
    assert any("annotation" in w for w in result.warnings), result.warnings


@pytest.mark.parametrize("how", ["object", "file"])
def test_results_object_with_annotations(tmp_path, tiny_pair, how):
    gt, res = tiny_pair
    expected = _ok(gt, res).stats
    wrapped: Any = {"annotations": res}
    if how == "file":
        p = tmp_path / "res.json"
        p.write_text(json.dumps(wrapped))
        wrapped = str(p)
    assert _ok(gt, wrapped).stats == expected


def test_results_object_warns(tiny_pair):
    gt, res = tiny_pair
    result = _ok(gt, {"annotations": res})
    assert any("annotations" in w for w in result.warnings), result.warnings


def test_every_prediction_twice_evaluates(tiny_pair):
    gt, res = tiny_pair
    _ok(gt, res + copy.deepcopy(res))


def test_every_prediction_twice_warns(tiny_pair):
    gt, res = tiny_pair
    result = _ok(gt, res + copy.deepcopy(res))
    assert any("duplicate" in w.lower() for w in result.warnings), result.warnings


@pytest.mark.parametrize("where", ["results", "gt"])
def test_video_id_as_string(tiny_pair, where):
    gt, res = tiny_pair
    if where == "results":
        res[0]["video_id"] = "1"
        _format_error(
            ovis_jax.load_results, res, ovis_jax.load_ground_truth(gt), expect=("results[0]",)
        )
    else:
        gt["annotations"][0]["video_id"] = "1"
        _format_error(ovis_jax.load_ground_truth, gt, expect=("annotations[0]",))


def test_segmentation_singular_is_an_error(tiny_pair):
    gt, res = tiny_pair
    res[1]["segmentation"] = res[1].pop("segmentations")
    _format_error(
        ovis_jax.load_results,
        res,
        ovis_jax.load_ground_truth(gt),
        expect=("results[1]", "segmentations"),
    )


def test_segmentation_singular_suggests(tiny_pair):
    gt, res = tiny_pair
    res[1]["segmentation"] = res[1].pop("segmentations")
    msg = _format_error(ovis_jax.load_results, res, ovis_jax.load_ground_truth(gt))
    assert "'segmentation'" in msg and "did you mean" in msg.lower(), msg


def _archive(kind: str, payload: bytes) -> bytes:
    if kind == "gzip":
        return gzip.compress(payload)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("results.json", payload)
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["gzip", "zip"])
@pytest.mark.parametrize("which", ["gt", "results"])
def test_archive_is_read_like_its_json(tmp_path, tiny_pair, kind, which):
    """A .gz / .zip of a JSON file reads as the file itself (a server submission is a zip)."""
    gt, res = tiny_pair
    p = tmp_path / "x.json"
    p.write_bytes(_archive(kind, json.dumps(gt if which == "gt" else res).encode()))
    path_gt, path_res = (str(p), res) if which == "gt" else (gt, str(p))
    got = ovis_jax.evaluate(path_gt, path_res, backend="cpu").stats
    assert got == ovis_jax.evaluate(gt, res, backend="cpu").stats


@pytest.mark.parametrize("which", ["gt", "results"])
def test_missing_file(tmp_path, tiny_pair, which):
    gt, _ = tiny_pair
    missing = str(tmp_path / "nope.json")
    with pytest.raises(FileNotFoundError):
        if which == "gt":
            ovis_jax.load_ground_truth(missing)
        else:
            ovis_jax.load_results(missing, ovis_jax.load_ground_truth(gt))
    with pytest.raises(OSError):
        ovis_jax.evaluate(missing if which == "gt" else gt, missing)


# --------------------------------------------------------------------------------------------
# Classes of issue 17: each a function of a seed that returns an outcome ("ok" / "error") or
# raises Failure; run in subprocess workers like the cases above (a hang or a crash is a
# failure). OVIS_JAX_FUZZ_CLASS_CASES scales them (default 100 each, in the slow run; the
# default run takes the first OVIS_JAX_FUZZ_QUICK_CLASS_CASES, default 10).

CLASS_CASES = int(os.environ.get("OVIS_JAX_FUZZ_CLASS_CASES", 100))
QUICK_CLASS_CASES = int(os.environ.get("OVIS_JAX_FUZZ_QUICK_CLASS_CASES", 10))


def _rle_gt(h: int, w: int, counts: list[int]) -> dict:
    from test_rle_parity import write_counts

    return {
        "videos": [{"id": 1, "height": h, "width": w, "length": 1}],
        "categories": [{"id": 1, "name": "a"}],
        "annotations": [
            {"id": 1, "video_id": 1, "category_id": 1, "iscrowd": 0, "areas": [None],
             "segmentations": [{"size": [h, w], "counts": write_counts(counts)}]}
        ],
    }  # fmt: skip


def c_over_long_rle(seed: int) -> str:
    """A random mask's string with values padded to 6..8 characters and some last characters
    changed: accepted exactly when pycocotools reads the same runs (its model, checked against
    pycocotools in test_rle_parity.py), which then fill the frame; the reference backend (which
    hands the string to pycocotools' merge) agrees with cpu."""
    from test_rle_parity import exact_values, official_counts, write_counts, write_value

    rng = random.Random(seed)
    h, w = rng.randint(1, 12), rng.randint(1, 12)
    # No zero-length run after the first: pycocotools' merge mishandles them whatever their
    # encoding (a separate difference, e.g. runs [0, 0, 1, 3, 2] against themselves: IoU 0).
    cuts = sorted({rng.randint(0, h * w - 1) for _ in range(rng.randint(0, 6))})
    counts = [b - a for a, b in zip([0, *cuts], [*cuts, h * w], strict=True)]
    s = write_counts(counts, {i: rng.choice([0, 0, 6, 7, 7, 8]) for i in range(len(counts))})
    values = []
    p = 0
    for x, k in exact_values(s.encode()):
        v = s[p : p + k]
        p += k
        if k >= 6 and rng.random() < 0.5:  # another last character, or another long value
            v = (
                v[:-1] + chr(48 + rng.randrange(32))
                if rng.random() < 0.7
                else write_value(
                    x + rng.choice([1, -1]) * (rng.choice([1, 2, 3, 4, 8, 16]) << 30), k
                )
            )
        values.append(v)
    s = "".join(values)
    res = [{"video_id": 1, "category_id": 1, "score": 0.5,
            "segmentations": [{"size": [h, w], "counts": s}]}]  # fmt: skip
    gt = _rle_gt(h, w, counts)
    theirs = official_counts(s.encode())
    try:
        loaded = ovis_jax.load_results(res, ovis_jax.load_ground_truth(gt))
    except FormatError as e:
        if "results[0] (video_id 1), frame 0" not in str(e):
            raise Failure(f"{s!r}: the message does not name the item: {e}") from e
        return "error"
    ours = [x for x, _ in exact_values(s.encode())]
    decoded = []
    for i, x in enumerate(ours):
        decoded.append(x + decoded[i - 2] if i > 2 else x)
    if decoded != theirs or sum(theirs) != h * w:
        raise Failure(f"{s!r} ({h}x{w}) accepted, but pycocotools reads {theirs}, we {decoded}")
    gt_loaded = ovis_jax.load_ground_truth(gt)
    a = ovis_jax.evaluate(gt_loaded, loaded, backend="cpu").stats
    if seed % 5 == 0:
        b = ovis_jax.evaluate(gt_loaded, loaded, backend="reference").stats
        if any(abs(a[k] - b[k]) > 1e-12 for k in a):
            raise Failure(f"{s!r}: cpu and reference disagree")
    return "ok"


def c_streaming_label_dtypes(seed: int) -> str:
    """The tiny ground truth with random category ids (64-bit ones included) and its results
    streamed with labels of a random dtype or transformation: the streaming evaluator and the
    file path both refuse (ValueError / FormatError) or give the same numbers and warnings."""
    import test_streaming_labels as tsl

    from ovis_jax.testing import assert_results_equal

    rng = random.Random(seed)
    gt, res = _tiny_pair(False)
    choices = [1, 2, 7, -3, 1 << 31, (1 << 32) + 1, -(1 << 31), 1 << 40, 2**63 - 1, -(2**63)]
    new = rng.sample(choices, 2)
    gt, res = tsl._recategorised((gt, res), {1: new[0], 2: new[1]})
    ids, masks, scores, labels, valid = tsl._arrays(gt, res)
    how = rng.choice(["int64", "object", "uint64", "int32", "float", "shift", "unknown", "big"])
    file_labels = labels.copy()
    if how == "shift":
        file_labels = np.where(valid, labels + rng.choice([1, -1]) * (1 << 32), 0)
    elif how == "unknown":
        file_labels[np.argwhere(valid)[0][0], np.argwhere(valid)[0][1]] = rng.choice(choices)
    elif how == "big":
        b, n = np.argwhere(valid)[rng.randrange(int(valid.sum()))]
        file_labels[b, n] = rng.choice([2**63, 2**64 - 1, -(2**63) - 1])
    streamed = file_labels
    if how in ("int64", "shift", "unknown"):
        ok = all(-(2**63) <= int(x) < 2**63 for x in file_labels.ravel())
        streamed = file_labels.astype(np.int64) if ok else file_labels
    elif how == "uint64":
        if any(int(x) < 0 for x in file_labels[valid]):
            return "skip"
        streamed = np.where(valid, file_labels, 0).astype(np.uint64)
    elif how == "int32":
        if any(not -(2**31) <= int(x) < 2**31 for x in file_labels[valid]):
            return "skip"
        streamed = np.where(valid, file_labels, 0).astype(np.int32)
    elif how == "float":
        streamed = np.where(valid, file_labels, 0).astype(np.float64) + rng.choice([0.0, 0.5])
    for i, v in enumerate(ids):  # the same predictions as a file, their labels replaced
        for j in np.flatnonzero(valid[i]):
            r = [x for x in res if x["video_id"] == v][j]
            r["category_id"] = float(streamed[i, j]) if how == "float" else int(file_labels[i, j])
    try:
        want = tsl._file(gt, copy.deepcopy(res))
    except FormatError:
        want = None
    try:
        got = tsl._stream(gt, ids, masks, scores, streamed, valid)
    except ValueError as e:
        if want is not None:
            raise Failure(f"{how}: streaming refuses ({e}) what the file path accepts") from e
        if "prediction" not in str(e):
            raise Failure(f"{how}: the message does not name the prediction: {e}") from e
        return "error"
    if want is None:
        raise Failure(f"{how}: streaming accepts what the file path refuses")
    try:
        assert_results_equal(got, want, what="streaming vs file")
    except AssertionError as e:
        raise Failure(f"{how} {new}: {e}") from e
    if got.warnings != want.warnings:
        raise Failure(f"{how}: warnings differ: {got.warnings} vs {want.warnings}")
    return "ok"


CLASSES = {"over_long_rle": c_over_long_rle, "streaming_label_dtypes": c_streaming_label_dtypes}


def class_worker(name: str, first: int, last: int) -> None:
    """Runs seeds [first, last) of a class; the protocol of :func:`worker`."""
    import logging

    logging.getLogger("ovis_jax").setLevel(logging.ERROR)
    warnings.simplefilter("ignore")
    faulthandler.enable()
    for seed in range(first, last):
        print(f"S {seed}", flush=True)
        faulthandler.dump_traceback_later(CASE_TIMEOUT_S, exit=True)
        try:
            kind = CLASSES[name](seed)
        except BaseException as e:  # a Failure or anything else
            tb = traceback.extract_tb(e.__traceback__)
            frames = [f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in tb[-4:]]
            msg = {"type": type(e).__name__, "msg": str(e)[:500], "where": frames}
            print(f"F {seed} {json.dumps(msg)}", flush=True)
            continue
        finally:
            faulthandler.cancel_dump_traceback_later()
        print(f"D {seed} {'error' if kind == 'error' else 'ok'}", flush=True)
    print("END", flush=True)


def run_class(name: str, first: int, n: int) -> tuple[list[dict], dict]:
    """Runs n seeds of a class in worker subprocesses (restarted after a crash or a hang)."""
    failures: list[dict] = []
    counts = {"ok": 0, "error": 0, "failed": 0}
    start, last = first, first + n
    while start < last:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--class", name, str(start),
               str(last)]  # fmt: skip
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=(last - start) * CASE_TIMEOUT_S + 300,
            cwd=str(HERE.parent),
        )  # fmt: skip
        started = None
        for line in proc.stdout.splitlines():
            tag, _, rest = line.partition(" ")
            if tag == "S":
                started = int(rest)
            elif tag == "D":
                counts[rest.split(" ", 1)[1]] += 1
                started = None
            elif tag == "F":
                seed, info = rest.split(" ", 1)
                failures.append({"seed": int(seed), **json.loads(info)})
                counts["failed"] += 1
                started = None
        if "END" in proc.stdout.splitlines() or started is None:
            if "END" not in proc.stdout.splitlines():
                failures.append({"seed": start, "type": "WorkerDied", "msg": proc.stderr[-2000:]})
            break
        kind = "Hang" if "Timeout" in proc.stderr else f"Crash(rc={proc.returncode})"
        failures.append({"seed": started, "type": kind, "msg": proc.stderr[-1500:]})
        counts["failed"] += 1
        start = started + 1
    return failures, counts


@pytest.mark.parametrize("name", sorted(CLASSES))
@pytest.mark.parametrize(
    "n",
    [
        pytest.param(QUICK_CLASS_CASES, id="quick"),
        pytest.param(CLASS_CASES, id="full", marks=pytest.mark.slow),
    ],
)
def test_fuzz_class(name, n):
    failures, counts = run_class(name, FIRST_SEED, n)
    print(f"fuzz class {name}: seeds {FIRST_SEED}..{FIRST_SEED + n - 1}: {counts}")
    assert not failures, failures[:5]
    assert counts["ok"] > 0 and counts["error"] > 0, counts


# --------------------------------------------------------------------------------------------
# File-system and environment mutations (issue 17 §7): outputs equal to inputs (by every name
# a file can have), missing and unwritable folders, folders in the way, two outputs on one file,
# an unwritable HOME and cache folders, corrupt numba cache files. Run in-process (every refusal
# happens before any work); each case checks exit status 2 with exactly one ``error:`` line and
# an unchanged folder, or, for the controls, every output written once and reported.
#
#     OVIS_JAX_FUZZ_FS_CASES=10000 pytest tests/test_fuzz.py -k fs   # more (default 60)
#     python tests/test_fuzz.py --fs FIRST N                          # the same, from a shell

FS_CASES = int(os.environ.get("OVIS_JAX_FUZZ_FS_CASES", 60))
FS_CLASSES = (
    "out_is_input",
    "missing_folder",
    "under_a_file",
    "output_is_folder",
    "two_outputs_one_file",
    "control",
    "home_and_cache_dirs",
    "corrupt_numba_cache",
)
_FS_KERNEL = """
import numba
def make():
    def kernel(x):
        return x * 3 - 1
    kernel.__module__ = "ovis_jax._fuzz_kernel"
    return numba.njit(cache=True)(kernel)
"""


def _fs_inputs(folder: Path) -> dict[str, Path]:
    gt, results = _tiny_pair(False)
    paths = {"gt": folder / "gt.json", "res": folder / "res.json"}
    paths["gt"].write_text(json.dumps(gt))
    paths["res"].write_text(json.dumps(results))
    return paths


def _alias(rng: random.Random, target: Path, folder: Path) -> str:
    """Another name of ``target``: itself, a symlink, a hard link, a dotted or relative path,
    or the file seen through a symlinked folder."""
    how = rng.choice(["same", "symlink", "hardlink", "dotted", "relative", "linked_folder"])
    other = folder / f"alias{rng.randrange(10**6)}.json"
    if how == "symlink":
        other.symlink_to(target)
        return str(other)
    if how == "hardlink":
        os.link(target, other)
        return str(other)
    if how == "dotted":
        return str(folder / "." / ".." / folder.name / target.name)
    if how == "relative":
        return os.path.relpath(target)
    if how == "linked_folder":
        link = folder / f"dir{rng.randrange(10**6)}"
        link.symlink_to(folder, target_is_directory=True)
        return str(link / target.name)
    return str(target)


def _fs_command(
    rng: random.Random, ins: dict[str, Path], option_path: dict[str, str], *, pack: bool = False
):
    """(main, argv) of a command whose outputs are ``option_path`` ({option: path}); ``--out``
    is pack's (with --gt) when ``pack``, else pack's or split's."""
    from ovis_jax._src.cli import commands
    from ovis_jax._src.cli import eval as cli

    if "--out" in option_path:
        if pack or rng.random() < 0.5:
            argv = ["--results", str(ins["res"]), "--out", option_path["--out"]]
            with_gt = pack or rng.random() < 0.5
            return commands.pack_main, [*argv, *(["--gt", str(ins["gt"])] * with_gt)]
        return commands.split_main, ["--gt", str(ins["gt"]), "--out", option_path["--out"]]
    argv = ["--gt", str(ins["gt"]), "--results", str(ins["res"]), "--backend", "cpu"]
    for option, path in option_path.items():
        argv += [option, path]
    return cli.main, argv


def _snapshot_tree(folder: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(folder)): (None if p.is_dir() or p.is_symlink() else p.read_bytes())
        for p in sorted(folder.rglob("*"))
    }


def _run_main(main, argv) -> tuple[int, list[str]]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        status = main(argv)
    return status, err.getvalue().splitlines()


def _expect_refusal(main, argv, folder: Path, *, want: str) -> None:
    before = _snapshot_tree(folder)
    status, err = _run_main(main, argv)
    if status != 2 or len(err) != 1 or not err[0].startswith("error: ") or want not in err[0]:
        raise Failure("Refusal", f"status {status}, stderr {err!r}, wanted {want!r}", "")
    if _snapshot_tree(folder) != before:
        raise Failure("Changed", f"{sorted(set(_snapshot_tree(folder)) ^ set(before))}", "")


EVAL_OUTPUTS = ("--json", "--matches", "--arrays")


def _fs_case(seed: int, folder: Path) -> str:
    rng = random.Random(seed)
    kind = FS_CLASSES[seed % len(FS_CLASSES)]
    ins = _fs_inputs(folder)
    if kind == "out_is_input":
        option = rng.choice([*EVAL_OUTPUTS, "--out"])
        if option == "--out" and rng.random() < 0.5:  # split into the folder of its own input
            ins["gt"].rename(folder / "valid_sub.json")
            ins["gt"] = folder / "valid_sub.json"
            from ovis_jax._src.cli.commands import split_main

            argv = ["--gt", str(ins["gt"]), "--out", str(folder)]
            _expect_refusal(split_main, argv, folder, want="same file")
            return kind
        path = _alias(rng, ins[rng.choice(["gt", "res"])], folder)
        main, argv = _fs_command(rng, ins, {option: path}, pack=True)
        _expect_refusal(main, argv, folder, want="same file")
    elif kind in ("missing_folder", "under_a_file", "output_is_folder"):
        option = rng.choice([*EVAL_OUTPUTS, "--out"])
        if kind == "missing_folder":
            depth = rng.randrange(1, 4)
            path = str(folder.joinpath(*[f"no{i}" for i in range(depth)], "out.x"))
            if option == "--out":  # split creates one level only; pack needs the folder
                path = str(folder / "no0" / "no1" / "out")
        elif kind == "under_a_file":
            path = str(ins[rng.choice(["gt", "res"])] / "out.x")
        else:
            sub = folder / "sub"
            sub.mkdir()
            path = str(sub)
            if option == "--out":
                option = "--json"
        outs = {option: path}
        if option != "--out" and rng.random() < 0.5:  # a good output beside: not written
            outs[rng.choice([o for o in EVAL_OUTPUTS if o != option])] = str(folder / "ok.x")
        main, argv = _fs_command(rng, ins, outs)
        _expect_refusal(main, argv, folder, want="cannot write")
    elif kind == "two_outputs_one_file":
        a, b = rng.sample(EVAL_OUTPUTS, 2)
        target = folder / "out.x"
        if rng.random() < 0.5:
            target.write_text("old")
        outs = {a: str(target), b: _alias(rng, target, folder) if target.exists() else str(target)}
        main, argv = _fs_command(rng, ins, outs)
        _expect_refusal(main, argv, folder, want="same file")
    elif kind == "control":
        outs = {
            o: str(folder / f"out{i}.x") for i, o in enumerate(EVAL_OUTPUTS) if rng.random() < 0.6
        }
        main, argv = _fs_command(rng, ins, outs)
        status, err = _run_main(main, argv)
        wrote = [e for e in err if e.startswith("wrote ")]
        if status != 0 or wrote != [f"wrote {p}" for p in outs.values()]:
            raise Failure("Control", f"status {status}, stderr {err!r}", "")
        left = sorted(p.name for p in folder.iterdir())
        if left != sorted(["gt.json", "res.json", *(Path(p).name for p in outs.values())]):
            raise Failure("Leftover", f"{left}", "")
    elif kind == "home_and_cache_dirs":
        _fs_home_and_cache(rng, folder)
    else:
        _fs_corrupt_cache(rng, folder)
    return kind


def _fs_home_and_cache(rng: random.Random, folder: Path) -> None:
    """An unusable HOME or cache folder: a cache folder is chosen or none, never an error."""
    import jax

    from ovis_jax._src.backends.jax import cache as xla_cache

    a_file = folder / "a_file"
    a_file.write_text("")
    home = rng.choice([None, "", "/", "/nonexistent", str(a_file), str(folder / "missing")])
    cache = rng.choice([None, str(a_file), str(a_file / "x"), str(folder / "m" / "n"), "/proc/x"])
    saved_env = {k: os.environ.get(k) for k in ("HOME", "OVIS_JAX_CACHE")}
    saved_dir = jax.config.jax_compilation_cache_dir
    try:
        for key, value in (("HOME", home), ("OVIS_JAX_CACHE", None)):
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no raw warnings either
            chosen = xla_cache.enable_compilation_cache(cache or xla_cache.default_cache_dir())
        if chosen is not None and xla_cache.writable_dir(chosen) is not None:
            raise Failure("Cache", f"chose unwritable {chosen!r} for HOME={home!r}", "")
    finally:
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        jax.config.update("jax_compilation_cache_dir", saved_dir)


def _fs_corrupt_cache(rng: random.Random, folder: Path) -> None:
    """A kernel of ovis_jax (by its module) whose cache files are damaged: the same value."""
    import importlib.util

    from ovis_jax._src.backends.cpu import startup

    startup.prepare_numba()
    src = folder / "ovis_jax_fuzz_kernel.py"
    src.write_text(_FS_KERNEL)

    def fresh():
        spec = importlib.util.spec_from_file_location(f"fz{rng.randrange(10**9)}", src)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.make()

    x = rng.randrange(-1000, 1000)
    if fresh()(x) != 3 * x - 1:
        raise Failure("Kernel", "wrong value before damage", "")
    files = sorted((folder / "__pycache__").glob("*.nb[ic]"))
    for path in rng.sample(files, rng.randrange(1, len(files) + 1)):
        raw = bytearray(path.read_bytes())
        how = rng.choice(["truncate", "flip", "empty", "garbage", "delete"])
        if how == "truncate":
            raw = raw[: rng.randrange(len(raw) + 1)]
        elif how == "flip":
            for _ in range(rng.randrange(1, 8)):
                if raw:
                    raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
        elif how == "empty":
            raw = bytearray()
        elif how == "garbage":
            raw = bytearray(rng.randbytes(rng.randrange(1, 200)))
        if how == "delete":
            path.unlink()
        else:
            path.write_bytes(bytes(raw))
    for _ in range(2):  # damaged, then rebuilt
        got = fresh()(x)
        if got != 3 * x - 1:
            raise Failure("Kernel", f"{got} != {3 * x - 1} after damage", "")


def run_fs_many(first: int, n: int) -> tuple[list[dict], dict]:
    failures, counts = [], dict.fromkeys(FS_CLASSES, 0)
    cwd = os.getcwd()
    for seed in range(first, first + n):
        with tempfile.TemporaryDirectory() as d:
            os.chdir(d)
            try:
                counts[_fs_case(seed, Path(d))] += 1
            except Failure as f:
                failures.append({"seed": seed, "type": f.args[0], "message": f.args[1]})
            except BaseException as e:  # any other exception: a failure with its seed
                tb = traceback.format_exc(limit=-4)
                failures.append({"seed": seed, "type": type(e).__name__, "message": tb})
            finally:
                os.chdir(cwd)
    return failures, counts


def test_fuzz_fs_and_env():
    failures, counts = run_fs_many(FIRST_SEED, FS_CASES)
    print(f"fs/env fuzz: seeds {FIRST_SEED}..{FIRST_SEED + FS_CASES - 1}: {counts}")
    assert not failures, json.dumps(failures[:20], indent=1)


# --------------------------------------------------------------------------------------------
# Archive mutations (issue 17 §4 and §7): encrypted members, compression methods Python cannot
# read, nested folders, duplicate members, bombs within a small cap. Each case is a file; the
# oracle: loading ends in the plain JSON's results or in a FormatError naming the file (never
# another exception, never more memory than the cap), and check lists the layouts the server
# rejects.

ARCHIVE_CASES = int(os.environ.get("OVIS_JAX_ARCHIVE_FUZZ_CASES", 300))
#: The default run's share (the first seeds); the slow run runs ARCHIVE_CASES.
QUICK_ARCHIVE_CASES = int(os.environ.get("OVIS_JAX_ARCHIVE_FUZZ_QUICK_CASES", 40))
_UNREADABLE_METHODS = [1, 2, 3, 4, 5, 6, 7, 9, 10, 18, 19, 20, 93, 95, 96, 97, 98]


def _archive_zip(path: Path, members: list[tuple[str, bytes]], method: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about duplicate names
        with zipfile.ZipFile(path, "w", compression=method) as z:
            for name, data in members:
                z.writestr(name, data)


def _archive_patch(path: Path, *, flag: int = 0, method: int | None = None) -> None:
    """Sets a flag bit / the compression method of every entry (local and central headers)."""
    b = bytearray(path.read_bytes())
    for sig, off in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        i = b.find(sig)
        while i >= 0:
            old = int.from_bytes(b[i + off : i + off + 2], "little")
            b[i + off : i + off + 2] = (old | flag).to_bytes(2, "little")
            if method is not None:
                b[i + off + 2 : i + off + 4] = method.to_bytes(2, "little")
            i = b.find(sig, i + 4)
    path.write_bytes(bytes(b))


def _whitespace(rng: random.Random, n: int) -> bytes:
    return b"[" + bytes(rng.choice(b" \n\t\r")) * n + b"]"


def make_archive_case(seed: int, tmp: Path, raw: bytes) -> tuple[Path, str, str, int | None]:
    """One archive case: (path, kind, what the outcome must be, cap). The outcome is "ok"
    (the plain results), "error:<text in the message>" or "problem:<text in a check line>"."""
    rng = random.Random(seed)
    kind = rng.choice(
        ["encrypted", "aes", "method", "nested", "duplicate", "gz_bomb", "zip_bomb", "fits"]
    )
    method = rng.choice(
        [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]
    )
    cap = rng.choice([None, 1 << 16, 1 << 18, 1 << 20])
    p = tmp / f"a{seed}.zip"
    if kind in ("encrypted", "aes", "method"):
        _archive_zip(p, [("results.json", raw)], method)
        if kind == "encrypted":
            _archive_patch(p, flag=1)
            return p, kind, "error:is encrypted", None
        if kind == "aes":
            _archive_patch(p, flag=1, method=99)
            return p, kind, "error:password-protected, AES", None
        m = rng.choice(_UNREADABLE_METHODS)
        _archive_patch(p, method=m)
        return p, kind, "error:uses the compression method", None
    if kind == "nested":
        folder = "/".join(
            rng.choice(["sub", "results", "a b", "ü"]) for _ in range(rng.randint(1, 3))
        )
        name = rng.choice(["results.json", "preds.json"])
        _archive_zip(
            p, [(f"{folder}/", b""), (f"{folder}/{name}", raw)][rng.randint(0, 1) :], method
        )
        return p, kind, "problem:inside a folder", None
    if kind == "duplicate":
        junk = rng.choice([b"[]", b"{}", b"", raw[: len(raw) // 2]])
        order = [("results.json", junk), ("results.json", raw)]
        _archive_zip(p, order if rng.random() < 0.5 else order[::-1], method)
        return p, kind, "error:2 members named", None
    cap = cap or 1 << 16
    if kind == "gz_bomb":
        p = tmp / f"a{seed}.json.gz"
        members = rng.randint(1, 4)
        body = _whitespace(rng, rng.randint(cap // members + 1, 4 * cap))
        p.write_bytes(b"".join(gzip.compress(body, rng.randint(1, 9)) for _ in range(members)))
        return p, kind, "error:more than the cap", cap
    if kind == "zip_bomb":
        _archive_zip(p, [("results.json", _whitespace(rng, rng.randint(cap, 8 * cap)))], method)
        return p, kind, "error:more than the cap", cap
    # fits: the results in a gzip (several members, padding) or a zip, under the cap
    if rng.random() < 0.5:
        p = tmp / f"a{seed}.json.gz"
        cuts = sorted(rng.randint(0, len(raw)) for _ in range(rng.randint(0, 3)))
        parts = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
        p.write_bytes(b"".join(gzip.compress(x) for x in parts) + b"\0" * rng.randint(0, 3))
    else:
        _archive_zip(p, [("results.json", raw)], method)
    return p, kind, "ok", max(cap, len(raw))


def run_archive_case(seed: int, tmp: Path, gt: Any, raw: bytes, want: Any) -> str:
    """Runs one archive case; returns its kind. Raises Failure on a wrong outcome."""
    from ovis_jax._src.workflow.check import check_results

    path, kind, expect, cap = make_archive_case(seed, tmp, raw)
    try:
        try:
            got = ovis_jax.load_results(str(path), gt, max_bytes=cap)
        except FormatError as e:
            if (
                not expect.startswith("error:")
                or expect[6:] not in str(e)
                or str(path) not in str(e)
            ):
                raise Failure(f"{kind}: expected {expect}, got FormatError {e}") from None
            return kind
        if expect.startswith("error:"):
            raise Failure(f"{kind}: expected {expect}, but it loaded")
        if not (np.array_equal(got.score, want.score) and list(got.rles) == list(want.rles)):
            raise Failure(f"{kind}: loaded results differ from the plain file's")
        if expect.startswith("problem:"):
            problems = check_results(gt, str(path), max_bytes=cap).problems
            if not any(expect[8:] in line for line in problems):
                raise Failure(f"{kind}: check did not list {expect[8:]!r}: {problems}")
        return kind
    finally:
        path.unlink()


@pytest.mark.parametrize(
    "n",
    [
        pytest.param(QUICK_ARCHIVE_CASES, id="quick"),
        pytest.param(ARCHIVE_CASES, id="full", marks=pytest.mark.slow),
    ],
)
def test_archive_fuzz(tmp_path, n):
    """OVIS_JAX_ARCHIVE_FUZZ_CASES=10000 pytest -m slow tests/test_fuzz.py -k archive (default
    300; the default run: the first 40)."""
    gt_dict, res = _tiny_pair(False)
    gt = ovis_jax.load_ground_truth(gt_dict)
    raw = json.dumps(res).encode()
    want = ovis_jax.load_results(res, gt)
    kinds: dict[str, int] = {}
    failures = []
    for seed in range(FIRST_SEED, FIRST_SEED + n):
        try:
            kind = run_archive_case(seed, tmp_path, gt, raw, want)
        except Failure as e:
            failures.append(f"seed {seed}: {e}")
            continue
        except Exception as e:  # anything else is a failure too
            failures.append(f"seed {seed}: {type(e).__name__}: {e}")
            continue
        kinds[kind] = kinds.get(kind, 0) + 1
    print(f"archive fuzz: seeds {FIRST_SEED}..{FIRST_SEED + n - 1}: {kinds}")
    assert not failures, "\n".join(failures[:20])
    assert len(kinds) == 8 or n < 100, kinds


# --------------------------------------------------------------------------------------------


def _main(argv: list[str]) -> None:
    if argv[:1] == ["--worker"]:
        worker(int(argv[1]), int(argv[2]))
    elif argv[:1] == ["--class"]:
        class_worker(argv[1], int(argv[2]), int(argv[3]))
    elif argv[:1] == ["--run-class"]:
        failures, counts = run_class(argv[1], int(argv[2]), int(argv[3]))
        print(argv[1], counts)
        print(json.dumps(failures[:20], indent=1) if failures else "no failures")
    elif argv[:1] == ["--fs"]:
        failures, counts = run_fs_many(int(argv[1]), int(argv[2]))
        print(counts)
        print(json.dumps(failures, indent=1) if failures else "no failures")
    elif argv[:1] == ["--case"]:
        seed = int(argv[1])
        print(describe(seed))
        with tempfile.TemporaryDirectory() as d:
            print(run_case(seed, Path(d)))
    else:
        first = int(argv[0]) if argv else FIRST_SEED
        n = int(argv[1]) if len(argv) > 1 else NUM_CASES
        failures, counts = run_many(first, n)
        print(counts)
        print(report(failures) if failures else "no failures")


if __name__ == "__main__":
    _main(sys.argv[1:])
