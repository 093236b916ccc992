"""Tests of :mod:`~device_rle`: RLE decoding and intersections on the JAX device."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from conftest import count_compiles
from pycocotools import mask as mask_utils

from ovis_jax._src.backends.jax import device_rle
from ovis_jax._src.backends.jax.device_rle import device_pair_intersections


def encode(mask: np.ndarray) -> bytes:
    """pycocotools' compressed RLE string of a 0/1 mask."""
    return mask_utils.encode(np.asfortranarray(np.asarray(mask, dtype=np.uint8)))["counts"]


def buffer(strings: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated characters and offsets of ``strings``."""
    start = np.zeros(len(strings) + 1, dtype=np.int64)
    np.cumsum([len(s) for s in strings], out=start[1:])
    return np.frombuffer(b"".join(strings), dtype=np.uint8).copy(), start


def run(d_strings, g_strings, pf_d, pf_g, pf_pair, num_pairs) -> np.ndarray:
    """:func:`device_pair_intersections` on lists of strings."""
    i64 = np.int64
    return device_pair_intersections(
        *buffer(d_strings),
        *buffer(g_strings),
        np.asarray(pf_d, i64),
        np.asarray(pf_g, i64),
        np.asarray(pf_pair, i64),
        num_pairs,
    )


# Hand cases. Column-major pixel order; strings checked against pycocotools below.
# A = [[1, 0],    runs 0, 2, 1, 1; the 4th value is stored as 1 - 2 = -1 -> 'O' (31 + 48)
#      [1, 1]]
# B = [[1, 1],    runs 0, 1, 1, 1, 1; 4th and 5th stored as 1 - 1 = 0 -> "01100"
#      [0, 0]]
# A ∩ B = {(0, 0)}: 1 pixel.
HAND_A, HAND_B = b"021O", b"01100"
HAND_EMPTY_2X2 = b"4"  # one background run of 4
HAND_FULL_3X1 = b"03"  # runs 0, 3
# 300×400 full: runs 0, 120000 = 6·2^5 + 21·2^10 + 3·2^15: '0', then 'P' (0|more) 'V' (6|more)
# 'e' (21|more) '3' (3, last, sign clear).
HAND_FULL_BIG = b"0PVe3"
# 300×400, left 200 columns set: runs 0, 60000, 60000 (60000 = 19·2^5 + 26·2^10 + 1·2^15).
HAND_HALF_BIG = b"0Pcj1Pcj1"


def test_hand_strings_match_pycocotools():
    assert encode([[1, 0], [1, 1]]) == HAND_A
    assert encode([[1, 1], [0, 0]]) == HAND_B
    assert encode(np.zeros((2, 2))) == HAND_EMPTY_2X2
    assert encode(np.ones((3, 1))) == HAND_FULL_3X1
    assert encode(np.ones((300, 400))) == HAND_FULL_BIG
    half = np.zeros((300, 400))
    half[:, :200] = 1
    assert encode(half) == HAND_HALF_BIG


def test_hand_cases():
    d = [HAND_A, HAND_FULL_3X1, HAND_EMPTY_2X2, HAND_FULL_BIG, HAND_HALF_BIG]
    g = [HAND_B, HAND_FULL_3X1, HAND_A, HAND_HALF_BIG, HAND_FULL_BIG]
    pf_d = [0, 1, 2, 0, 3, 4, 3, 4]
    pf_g = [0, 1, 2, 2, 3, 4, 4, 3]
    pf_pair = [0, 0, 1, 2, 3, 3, 4, 4]
    got = run(d, g, pf_d, pf_g, pf_pair, 6)
    expected = [
        1 + 3,  # A ∩ B = 1, full 3×1 ∩ itself = 3
        0,  # empty ∩ A
        3,  # A ∩ A = |A| = 3
        60000 + 60000,  # full ∩ half, half ∩ full (queried from either side)
        120000 + 60000,  # full ∩ full, half ∩ half
        0,  # pair without pair-frames
    ]
    np.testing.assert_array_equal(got, expected)
    assert got.dtype == np.int64


def test_size_zero():
    assert run([], [], [], [], [], 0).shape == (0,)
    np.testing.assert_array_equal(run([], [], [], [], [], 3), [0, 0, 0])
    np.testing.assert_array_equal(run([HAND_A], [HAND_B], [], [], [], 2), [0, 0])
    # Masks that are all background (and a 0×0 frame: the empty string, no runs at all).
    empty = [b"4", b"4", b""]
    np.testing.assert_array_equal(run(empty, empty, [0, 1, 2], [1, 0, 2], [0, 0, 1], 2), [0, 0])


def random_mask(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Noise, boxes, all empty or all full, chosen at random."""
    kind = rng.integers(5)
    if kind == 0 or h * w == 0:
        return np.zeros((h, w), dtype=bool)
    if kind == 1:
        return np.ones((h, w), dtype=bool)
    if kind == 2 and h * w <= 4096:  # noise: many short runs (kept small: few compilations)
        return rng.random((h, w)) < rng.random()
    m = np.zeros((h, w), dtype=bool)
    for _ in range(rng.integers(1, 4)):
        r0, c0 = rng.integers(0, h), rng.integers(0, w)
        m[r0 : rng.integers(r0, h + 1), c0 : rng.integers(c0, w + 1)] = True
    if kind == 4:
        m[0, 0] = True  # starts with foreground: the first background run is 0
    return m


def random_case(rng: np.random.Generator, sizes: list[tuple[int, int]]):
    """Videos of random sizes, result and ground-truth tracks, pairs within a video.

    Returns:
        ``(args, expected, d_masks, g_masks)``: the arguments of :func:`run`, the NumPy
        intersections per pair and the dense masks behind the strings.
    """
    d_masks, g_masks, pf_d, pf_g, pf_pair = [], [], [], [], []
    num_pairs = 0
    for h, w in sizes:
        frames = int(rng.integers(1, 4))
        tracks = []
        for masks in (d_masks, g_masks):
            first = len(masks)
            masks.extend(random_mask(rng, h, w) for _ in range(frames * int(rng.integers(1, 3))))
            tracks.append(range(first, len(masks), frames))
        for d0 in tracks[0]:
            for g0 in tracks[1]:
                for t in rng.permutation(frames)[: rng.integers(0, frames + 1)]:
                    pf_d.append(d0 + t)
                    pf_g.append(g0 + t)
                    pf_pair.append(num_pairs)
                num_pairs += 1
    expected = np.zeros(num_pairs, dtype=np.int64)
    np.add.at(
        expected,
        pf_pair,
        [(d_masks[a] & g_masks[b]).sum() for a, b in zip(pf_d, pf_g, strict=True)],
    )
    strings = ([encode(m) for m in d_masks], [encode(m) for m in g_masks])
    return (*strings, pf_d, pf_g, pf_pair, num_pairs), expected, d_masks, g_masks


SIZES = [(1, 1), (1, 37), (29, 1), (7, 9), (16, 16), (0, 0), (300, 400)]


@pytest.fixture(scope="module")
def sweep():
    """Seeded random videos of all :data:`SIZES`, in one call (so one compilation).

    Returns:
        ``(args, expected, d_masks, got)``.
    """
    rng = np.random.default_rng(2024)
    sizes = [SIZES[i] for i in rng.integers(0, len(SIZES), 40)] + SIZES
    args, expected, d_masks, _ = random_case(rng, sizes)
    return args, expected, d_masks, run(*args)


def test_random_against_numpy(sweep):
    args, expected, _, got = sweep
    assert args[-1] > 50 and expected.any() and (expected == 0).any()
    np.testing.assert_array_equal(got, expected)


def test_random_against_pycocotools_merge(sweep):
    (d, g, pf_d, pf_g, pf_pair, num_pairs), _, d_masks, got = sweep
    expected = np.zeros(num_pairs, dtype=np.int64)
    for a, b, p in zip(pf_d, pf_g, pf_pair, strict=True):
        size = list(d_masks[a].shape)
        rles = [{"size": size, "counts": d[a]}, {"size": size, "counts": g[b]}]
        expected[p] += int(mask_utils.area(mask_utils.merge(rles, intersect=True)))
    np.testing.assert_array_equal(got, expected)


def test_chunking(monkeypatch):
    """Many small chunks, and pair-frames larger than a chunk, give the same sums."""
    rng = np.random.default_rng(7)
    args, expected, _, _ = random_case(rng, [(7, 9), (16, 16), (1, 37), (29, 1), (16, 16)])
    monkeypatch.setattr(device_rle, "_CHUNK_SLOTS", 5)
    np.testing.assert_array_equal(run(*args), expected)


def test_tiny_chunk_bounds(monkeypatch):
    """Bounds on characters and slots far below the data: many chunks, each decoding only
    its own strings (some pair-frames alone over a bound), give the same sums."""
    rng = np.random.default_rng(5)
    sizes = [SIZES[i] for i in rng.integers(0, len(SIZES) - 1, 60)]  # all but 300×400
    args, expected, _, _ = random_case(rng, sizes)
    assert len(args[0]) + len(args[1]) > 300
    monkeypatch.setattr(device_rle, "_CHUNK_CHARS", 60)
    monkeypatch.setattr(device_rle, "_CHUNK_SLOTS", 12)
    monkeypatch.setattr(device_rle, "_MIN_WINDOW", 1)
    chunks = []
    dispatch = device_rle._dispatch_chunk

    def spy(strings, pf_q, pf_b, pf_pair, slots):
        ids = np.unique(np.concatenate([pf_q, pf_b]))
        lengths = np.diff(
            np.concatenate([strings.d_start, strings.g_start[1:] + strings.d_start[-1]])
        )
        chunks.append((pf_q.shape[0], int(lengths[ids].sum()), int(slots.sum())))
        return dispatch(strings, pf_q, pf_b, pf_pair, slots)

    monkeypatch.setattr(device_rle, "_dispatch_chunk", spy)
    np.testing.assert_array_equal(run(*args), expected)
    n, chars, slots = np.array(chunks).T
    assert chunks and (n > 1).any() and (n == 1).any()
    assert ((chars <= 60) & (slots <= 12) | (n == 1)).all()
    assert ((chars > 60) | (slots > 12)).any()  # pair-frames alone over a bound


def test_jit_and_eager_equal_pycocotools(jit_mode):
    rng = np.random.default_rng(3)
    args, expected, _, _ = random_case(rng, [(5, 4), (1, 6), (6, 1)])
    np.testing.assert_array_equal(run(*args), expected)


def test_no_retrace_for_same_buckets():
    kernels = (device_rle._prepare, device_rle._intersect_chunk)
    rng = np.random.default_rng(11)
    first, *_ = random_case(rng, [(7, 9), (16, 16)])
    second, expected, _, _ = random_case(rng, [(9, 7), (8, 8), (3, 3)])
    run(*first)
    with count_compiles() as log:
        np.testing.assert_array_equal(run(*second), expected)
    assert not {k.__name__ for k in kernels} & set(log.names), log.names


def test_x64_flag_unchanged():
    before = jax.config.jax_enable_x64
    run([HAND_FULL_BIG], [HAND_HALF_BIG], [0], [0], [0], 1)
    assert jax.config.jax_enable_x64 == before
