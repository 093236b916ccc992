"""One decoding of compressed RLE, the official one (issue 17, section 5).

pycocotools' ``rleFrString`` (the decoder of the official evaluators and of the server) builds
each value with 32-bit ``int`` shifts and stores the runs as 32-bit ``uint``; ovis_jax's kernels
(``masks/scan.py``, the device decoder of ``backends/jax/device_rle.py``) use 64-bit arithmetic.
Every way the two can differ is listed here with a string, what pycocotools does with it
(computed with pycocotools, in a subprocess: some of these strings make it read past the end of
the string or corrupt its heap, and ``merge`` of two of them can loop for ever) and what
ovis_jax reports. The rule: a string that pycocotools would not decode to the same valid mask is
refused by every backend and every command, with the item and frame named.

:func:`official_counts` is ``rleFrString`` as it runs on x86-64 (shift counts taken modulo 32,
the ``char`` signed), checked against pycocotools itself on random strings below.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import ovis_jax
from ovis_jax import FormatError
from ovis_jax._src.masks import scan

ISSUE_STRING = "R51?1doooooOO<1J"  # issue 17: 21 x 10, one value written in 7 characters
H, W = 21, 10


# --------------------------------------------------------------------------------------------
# Decoders in Python


def _int32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


def official_counts(s: bytes) -> list[int]:
    """pycocotools' ``rleFrString`` on x86-64: the uint32 run lengths it stores."""
    counts: list[int] = []
    p = 0
    while p < len(s):
        x, k, more = 0, 0, True
        while more:
            c = s[p] - 48 if p < len(s) else -48  # the C string's terminating NUL
            c = (c & 0xFF) - 256 if (c & 0xFF) >= 128 else c & 0xFF  # a signed char
            x |= _int32((c & 0x1F) << ((5 * k) & 31))
            more = c & 0x20
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= _int32(-1 << ((5 * k) & 31))
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x & 0xFFFFFFFF)
    return counts


def exact_values(s: bytes) -> list[tuple[int, int]]:
    """The mathematical values of a well-formed string (no width limit): ``(value, chars)``."""
    out, p = [], 0
    while p < len(s):
        x, k, more = 0, 0, True
        while more:
            c = s[p] - 48
            x |= (c & 0x1F) << (5 * k)
            more = c & 0x20
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        out.append((x, k))
    return out


def write_value(x: int, chars: int) -> str:
    """``x`` written in exactly ``chars`` characters (padded with sign characters), as the
    encoder would never write it."""
    out = []
    for j in range(chars):
        ch = (x >> (5 * j)) & 0x1F
        out.append(chr(48 + (ch | (0x20 if j < chars - 1 else 0))))
    return "".join(out)


def write_counts(counts: list[int], widths: dict[int, int] | None = None) -> str:
    """Compressed RLE of ``counts``; value ``i`` padded to ``widths[i]`` characters."""
    widths = widths or {}
    out = []
    for i, c in enumerate(counts):
        x = c - counts[i - 2] if i > 2 else c
        canonical = 1
        while not -(1 << (5 * canonical - 1)) <= x < 1 << (5 * canonical - 1):
            canonical += 1
        out.append(write_value(x, max(canonical, widths.get(i, 0))))
    return "".join(out)


def ours(s: bytes) -> tuple[int, int, list[int] | None]:
    """``(problem code, total, run lengths or None)`` of ovis_jax's scanner."""
    chars = np.frombuffer(bytearray(s), dtype=np.uint8)
    start = np.array([0, len(s)], dtype=np.int64)
    codes = np.zeros(1, dtype=np.int8)
    totals, areas, firsts, lasts, nvals = (np.zeros(1, dtype=np.int64) for _ in range(5))
    scan.scan_strings(chars, start, 0, 1, codes, totals, areas, firsts, lasts, nvals)
    if codes[0] != scan.OK:
        return int(codes[0]), int(totals[0]), None
    out = np.zeros(int(nvals[0]), dtype=np.int64)
    scan.decode_lengths(chars, start, np.zeros(1, np.int64), np.zeros(1, np.int64), 0, 1, out)
    return scan.OK, int(totals[0]), out.tolist()


_PROBE = textwrap.dedent(
    """
    import json, sys
    from pycocotools import mask
    out = []
    for s, h, w in json.load(sys.stdin):
        rle = {"size": [h, w], "counts": s.encode("latin-1")}
        area = int(mask.area(rle))
        try:
            m = mask.decode(rle)
            decoded = m.flatten(order="F").tolist()
        except ValueError as e:
            decoded = str(e)
        out.append([area, decoded])
    print(json.dumps(out))
    """
)


def pycocotools_decode(items: list[tuple[str, int, int]]) -> list[tuple[int, list[int] | str]]:
    """``(area, column-major pixels or the error message)`` of ``mask.area`` and
    ``mask.decode`` of each ``(string, h, w)``, in a subprocess (never ``merge``)."""
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE],
        input=json.dumps(items),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return [tuple(x) for x in json.loads(proc.stdout)]


def pixels(counts: list[int]) -> list[int]:
    return [i % 2 for i, c in enumerate(counts) for _ in range(c)]


# --------------------------------------------------------------------------------------------
# The Python model of rleFrString is pycocotools


def _random_string(rng: random.Random) -> bytes:
    s = []
    for _ in range(rng.randint(1, 8)):
        n = rng.choice([1, 1, 2, 6, 7, 7, 8])
        s += [48 + (rng.randrange(32) | 0x20) for _ in range(n - 1)] + [48 + rng.randrange(32)]
    return bytes(s)


def test_official_counts_is_pycocotools():
    """The model against pycocotools on random strings with 1..8-character values: equal areas,
    equal masks where the modelled runs fill the frame (1 x their sum when small), and
    pycocotools' error where they overflow it."""
    rng = random.Random(0)
    strings = [_random_string(rng) for _ in range(3000)]
    strings += [write_counts([rng.randint(0, 600) for _ in range(7)]).encode() for _ in range(300)]
    sizes = [
        (1, sum(official_counts(s)) if 0 < sum(official_counts(s)) <= 1 << 14 else 64)
        for s in strings
    ]
    got = pycocotools_decode([(s.decode(), h, w) for s, (h, w) in zip(strings, sizes, strict=True)])
    compared = 0
    for s, (h, w), (area, decoded) in zip(strings, sizes, got, strict=True):
        counts = official_counts(s)
        assert area == sum(counts[1::2]) & 0xFFFFFFFF, s
        if sum(counts) == h * w:
            assert decoded == pixels(counts), s
            compared += 1
        elif sum(counts) > h * w:
            assert decoded == "Invalid RLE mask representation", s
    assert compared >= 300


def test_every_accepted_string_decodes_as_pycocotools():
    """The invariant: whenever the scanner accepts a string, pycocotools stores the same runs
    (random strings rich in 6- to 8-character values, and padded encodings of random masks)."""
    rng = random.Random(1)
    accepted = 0
    for _ in range(20000):
        if rng.random() < 0.5:
            s = _random_string(rng)
        else:
            counts = [rng.randint(0, 1 << rng.choice([3, 10, 29, 30])) for _ in range(6)]
            widths = {i: rng.choice([0, 6, 7]) for i in range(6)}
            s = write_counts(counts, widths).encode()
        code, _, runs = ours(s)
        if code == scan.OK:
            accepted += 1
            assert runs == official_counts(s), s
    assert accepted > 3000


# --------------------------------------------------------------------------------------------
# Each difference: a string, what pycocotools does, what ovis_jax reports

_PREFIX = write_counts([5, 20, 5])
# (name, string, h, w, pycocotools: "same" | "invalid" | "other mask" | "garbage", our code)
CASES = [
    # A 7-character value whose last character has more than payload bit 0: pycocotools
    # shifts it by 30 in a 32-bit int (the upper payload bits and the sign at bit 34 are lost,
    # and the sign is applied as -1 << 3). The issue's string: ours -12 + 15, pycocotools -4 +
    # 15, and every later run of that chain 8 pixels off: 234 pixels in a 210-pixel frame.
    ("issue-17", ISSUE_STRING, H, W, "invalid", scan.OVERFLOW),
    # No sign, 7th payload 4: the value 5 + 2^32. pycocotools keeps 5, a valid (other) mask.
    ("7-chars-no-sign-2^32", write_value(5 + (4 << 30), 7) + "5", 1, 10, "valid", scan.OVERFLOW),
    # Sign, 7th payload 31, bits 3..29 all ones: -8 in both, but pycocotools gets it only
    # through the undefined shift -1 << 35 (x86 takes it as -1 << 3): refused.
    # Runs 5, 20, 5, then -8 + 20 = 12 for both.
    ("7-chars-sign-by-accident", _PREFIX + write_value(-8, 7), 1, 42, "valid", scan.OVERFLOW),
    # Sign, 7th payload 31, low bits not all ones: -16 + 20 = 4 for us (a valid 34-pixel mask,
    # accepted before issue 17), -8 + 20 = 12 for pycocotools.
    ("7-chars-sign-differs", _PREFIX + write_value(-16, 7), 1, 34, "invalid", scan.OVERFLOW),
    # Values of 8 characters: pycocotools shifts by 35 mod 32 = 3 (value 1: 5 + (5 << 3) = 45).
    ("8-chars", "5" + write_value(5, 7)[:-1] + "P5", 1, 50, "valid", scan.TOO_LONG),
    # A negative first run (values 0..2 are stored as they are): pycocotools wraps it to a
    # uint32 of 2^32 - 16.
    ("leading-negative", "@5", 1, 10, "invalid", scan.NEGATIVE),
    # A negative run after the difference (value 3 = -6 + run 1 = 5): pycocotools wraps it.
    ("delta-negative", "55" + "5" + "F" + "5", 1, 20, "invalid", scan.NEGATIVE),
    # A run of 2^31 (2^30 + 2^30, both 7-character values ending in '1'): pycocotools keeps the
    # uint32, which no frame of at most 2^31 - 1 pixels holds.
    ("run-2^31", "5" + "PPPPPP1" + "5" + "PPPPPP1", 1, 10, "invalid", scan.HUGE),
    # A string ending inside a value: pycocotools reads the terminating NUL as a character
    # (-48: payload 16, signed), then goes on reading past the end of the string.
    ("truncated", "55" + "P", 1, 10, "invalid", scan.TRUNCATED),
    # A character outside '0'..'o': pycocotools masks it ('p' is payload 0): [5, 0, 5].
    ("bad-character", "5p5", 1, 10, "valid", scan.BAD_CHAR),
]


@pytest.fixture(scope="module")
def official():
    got = pycocotools_decode([(s, h, w) for _, s, h, w, *_ in CASES])
    return {name: g for (name, *_), g in zip(CASES, got, strict=True)}


@pytest.mark.parametrize(
    ("name", "s", "h", "w", "theirs", "code"), CASES, ids=[c[0] for c in CASES]
)
def test_difference(official, name, s, h, w, theirs, code):
    area, decoded = official[name]
    if name != "truncated":  # past the string's end the model cannot know the memory
        counts = official_counts(s.encode())
        assert area == sum(counts[1::2]) & 0xFFFFFFFF
        assert (sum(counts) == h * w) == (theirs == "valid")
        if theirs == "valid":
            assert decoded == pixels(counts)
    if theirs == "invalid" and name != "truncated":
        assert sum(official_counts(s.encode())) > h * w
        assert decoded == "Invalid RLE mask representation"
    got, _, _ = ours(s.encode())
    assert got == code


def test_issue_string_values():
    """The issue's string, value by value: ours and pycocotools' run lengths."""
    values = exact_values(ISSUE_STRING.encode())
    assert values[4] == (-12, 7)
    assert official_counts(ISSUE_STRING.encode()) == [162, 1, 15, 2, 11, 1, 23, 2, 17]
    assert sum(official_counts(ISSUE_STRING.encode())) == 234


@pytest.mark.parametrize("last", ["0", "1"])
def test_seven_characters_ending_in_0_or_1_are_the_same_value(last):
    """A 7-character value whose last character is '0' or '1' fits 32 bits: accepted, and
    pycocotools reads the same runs."""
    s = ("5" + "PPPPPP" + last).encode()  # 5, then 0 or 2^30
    code, total, runs = ours(s)
    assert code == scan.OK and runs == official_counts(s) == [5, int(last) << 30]
    assert total == 5 + (int(last) << 30)


@pytest.mark.parametrize("x", [0, 1, -1, 15, -16, 16, -17, (1 << 25) - 1, -(1 << 29), 12345])
@pytest.mark.parametrize("chars", [1, 2, 3, 4, 5, 6])
def test_values_of_up_to_6_characters_agree(x, chars):
    """Every value of at most 6 characters (sign extension included) is the same value for
    both decoders, however many characters it is padded to."""
    lo, hi = -(1 << (5 * chars - 1)), 1 << (5 * chars - 1)
    if not lo <= x < hi:
        pytest.skip("does not fit")
    s = ("55" + "5" + write_value(x, chars)).encode()  # value 3: x + run 1 (5)
    code, _, runs = ours(s)
    if 5 + x < 0:
        assert code == scan.NEGATIVE
    else:
        assert code == scan.OK and runs == official_counts(s) == [5, 5, 5, 5 + x]


def test_trailing_zero_run_is_the_same_mask():
    """Trailing values are decoded alike: a zero-length last run changes nothing for either."""
    s = write_counts([5, 5, 0]).encode()
    assert ours(s)[2] == official_counts(s) == [5, 5, 0]


# --------------------------------------------------------------------------------------------
# Every backend and every command refuses the issue's string


def _dataset(counts: str) -> tuple[dict, list]:
    full = write_counts([0, H * W])
    half = write_counts([105, 105])
    gt = {
        "videos": [{"id": 7, "height": H, "width": W, "length": 2}],
        "categories": [{"id": 1, "name": "a"}],
        "annotations": [
            {
                "id": 1,
                "video_id": 7,
                "category_id": 1,
                "iscrowd": 0,
                "segmentations": [{"size": [H, W], "counts": full}, None],
                "areas": [H * W, None],
            }
        ],
    }
    results = [
        {
            "video_id": 7,
            "category_id": 1,
            "score": 0.9,
            "segmentations": [
                {"size": [H, W], "counts": half},
                {"size": [H, W], "counts": counts},
            ],
        }
    ]
    return gt, results


WHERE = "results[0] (video_id 7), frame 1"


@pytest.mark.parametrize("backend", ["cpu", "jax", "reference"])
def test_every_backend_refuses_the_issue_string(backend):
    """The reference backend used to hang in ``merge``: validation comes first."""
    gt, results = _dataset(ISSUE_STRING)
    with pytest.raises(FormatError) as info:
        ovis_jax.evaluate(gt, results, backend=backend)
    assert WHERE in str(info.value) and "32-bit" in str(info.value)


@pytest.mark.parametrize("backend", ["cpu", "jax", "reference"])
def test_every_backend_agrees_on_7_character_values_ending_in_1(backend):
    """A padded but representable string evaluates as its canonical form on every backend."""
    half = [105, 105]
    padded = write_counts(half, {0: 7, 1: 7})
    assert padded[6] == "0" and padded != write_counts(half)
    gt, results = _dataset(padded)
    got = ovis_jax.evaluate(gt, results, backend=backend).stats
    gt, results = _dataset(write_counts(half))
    assert got == ovis_jax.evaluate(gt, results, backend="cpu").stats


def _files(tmp_path, counts):
    gt, results = _dataset(counts)
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "res.json").write_text(json.dumps(results))
    return str(tmp_path / "gt.json"), str(tmp_path / "res.json")


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_eval_command_refuses_the_issue_string(tmp_path, capsys, backend):
    from ovis_jax._src.cli import eval as cli

    gt, res = _files(tmp_path, ISSUE_STRING)
    assert cli.main(["--gt", gt, "--results", res, "--backend", backend]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and WHERE in err[0], err


def test_check_command_lists_the_issue_string(tmp_path, capsys):
    from ovis_jax._src.cli import commands

    gt, res = _files(tmp_path, ISSUE_STRING)
    assert commands.check_main(["--gt", gt, "--results", res]) == 2
    out = capsys.readouterr()
    assert WHERE in out.out + out.err and "32-bit" in out.out + out.err


def test_ground_truth_with_the_issue_string_is_refused():
    gt, _ = _dataset(write_counts([105, 105]))
    gt["annotations"][0]["segmentations"][1] = {"size": [H, W], "counts": ISSUE_STRING}
    with pytest.raises(FormatError, match=r"annotations\[0\] \(video_id 7\), frame 1"):
        ovis_jax.load_ground_truth(gt)


# --------------------------------------------------------------------------------------------
# Inner zero-length runs: pycocotools' merge can stop early at one (a mask scored against itself
# gets IoU 0 in the official evaluator), so they are refused on every backend; a leading or a
# trailing zero-length run is merged correctly and accepted.


@pytest.mark.parametrize("runs", [[0, 0, 105, 105], [105, 0, 0, 105], [50, 55, 0, 50, 55]])
@pytest.mark.parametrize("backend", ["cpu", "jax", "reference"])
def test_inner_zero_run_is_refused_on_every_backend(backend, runs):
    gt, results = _dataset(write_counts(runs))
    with pytest.raises(FormatError) as info:
        ovis_jax.evaluate(gt, results, backend=backend)
    assert WHERE in str(info.value) and "zero-length run" in str(info.value)
    assert ours(write_counts(runs).encode())[0] == scan.ZERO_RUN


def test_inner_zero_run_in_uncompressed_ground_truth_is_refused():
    gt, results = _dataset(write_counts([105, 105]))
    gt["annotations"][0]["segmentations"][0] = {"size": [H, W], "counts": [100, 0, 5, 105]}
    with pytest.raises(FormatError, match="zero-length run"):
        ovis_jax.evaluate(gt, results, backend="cpu")


@pytest.mark.parametrize("runs", [[0, H * W], [105, 105, 0], [105, 105, 0, 0], [0, 105, 105, 0]])
@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_leading_and_trailing_zero_runs_are_accepted(backend, runs):
    gt, results = _dataset(write_counts(runs))
    got = ovis_jax.evaluate(gt, results, backend=backend).stats
    trimmed = [r for i, r in enumerate(runs) if r or i == 0]
    gt, results = _dataset(write_counts(trimmed if trimmed[-1] else trimmed[:-1]))
    assert got == ovis_jax.evaluate(gt, results, backend="cpu").stats
