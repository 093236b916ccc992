"""Labels of streamed predictions: exactly the category ids a results file may hold.

A results file's ``category_id`` must be a JSON integer that fits int64; a result whose id is not
a category of the ground truth is counted in a warning and not evaluated. The streaming
evaluator applies the same rules to its ``labels``: :func:`host_labels` checks them on the host
(an integer dtype, values in int64, named by video and prediction otherwise) and splits each
id into two int32 halves, so that the device state holds every 64-bit id exactly without JAX's
x64 mode; :func:`join_labels` puts them back together on the host at ``compute`` time, where
they are compared with the ground truth's ids in int64.

Shapes use the legend of :mod:`ovis_jax._src.legend` (B videos in a batch, N predictions).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["host_labels", "join_labels", "split_labels"]

_INT64 = np.iinfo(np.int64)


def _first_bad(bad: np.ndarray) -> tuple[int, int] | None:
    hits = np.argwhere(bad)
    return None if hits.size == 0 else (int(hits[0, 0]), int(hits[0, 1]))


def _error(video_ids: np.ndarray, at: tuple[int, int] | None, what: str) -> ValueError:
    if at is None:
        return ValueError(f"labels: {what}")
    b, n = at
    return ValueError(f"video {int(video_ids[b])} (video_ids[{b}]), prediction {n}: {what}")


def host_labels(
    labels: Any, *, real: np.ndarray, video_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Checks a batch's labels as a results file's ``category_id`` is checked, and splits them.

    Args:
        labels: int[B, N] category ids (any integer dtype; Python ints in an object array).
        real: bool[B, N] which entries are predictions to evaluate (valid, not padding); the
            others are not checked and become 0.
        video_ids: int64[B] the batch's video ids (for messages).

    Returns:
        ``(lo, hi)``: int32[B, N] the low and high 32 bits of each id (two's complement).

    Raises:
        ValueError: a label that is not an integer, or outside int64 (named by video id and
            prediction index), like a results file's non-integer ``category_id``.
    """
    arr = np.asarray(jax.device_get(labels))
    kind = arr.dtype.kind
    if kind == "O":
        arr = _object_ids(arr, real, video_ids)
    elif kind == "b" or kind not in "iu":
        at = _first_bad(real)
        value = arr[at].item() if at is not None else None
        raise _error(
            video_ids, at,
            f"label {value!r} ({arr.dtype}) is not an integer category id: labels must have "
            "an integer dtype, as a results file's 'category_id' must be a JSON integer",
        )  # fmt: skip
    elif kind == "u" and arr.dtype.itemsize == 8:
        too_big = real & (arr > np.uint64(_INT64.max))
        if too_big.any():
            at = _first_bad(too_big)
            raise _error(video_ids, at, f"label {int(arr[at])} is not a 64-bit category id")
    ids = np.where(real, arr, 0).astype(np.int64)
    lo = (ids & 0xFFFFFFFF).astype(np.uint32).view(np.int32)
    hi = (ids >> 32).astype(np.int32)
    return lo, hi


def _object_ids(arr: np.ndarray, real: np.ndarray, video_ids: np.ndarray) -> np.ndarray:
    """int64 ids of an object array of Python integers (checked where ``real``)."""
    out = np.zeros(arr.shape, dtype=np.int64)
    for b, n in np.argwhere(real):
        x = arr[b, n]
        if not isinstance(x, (int, np.integer)) or isinstance(x, (bool, np.bool_)):
            raise _error(video_ids, (b, n), f"label {x!r} is not an integer category id")
        if not _INT64.min <= int(x) <= _INT64.max:
            raise _error(video_ids, (b, n), f"label {int(x)} is not a 64-bit category id")
        out[b, n] = int(x)
    return out


def split_labels(labels: Any) -> tuple[jax.Array, jax.Array]:
    """Traced labels of :meth:`StreamingEvaluator.update_fn` as ``(lo, hi)`` int32 halves.

    ``labels`` is either the ``(lo, hi)`` pair of :func:`host_labels` or an integer array:
    int32 and narrower ids are sign- (or zero-) extended, int64 / uint64 ones (under x64) are
    split exactly.

    Raises:
        ValueError: a non-integer dtype (at trace time).
    """
    if isinstance(labels, tuple):
        lo, hi = labels
        return jnp.asarray(lo, jnp.int32), jnp.asarray(hi, jnp.int32)
    x = jnp.asarray(labels)
    if not jnp.issubdtype(x.dtype, jnp.integer):
        raise ValueError(
            f"labels must be integer category ids, got dtype {x.dtype} (a results file's "
            "'category_id' must be a JSON integer)"
        )
    if x.dtype.itemsize == 8:
        lo = jax.lax.bitcast_convert_type((x & 0xFFFFFFFF).astype(jnp.uint32), jnp.int32)
        hi = (x >> 32).astype(jnp.int32)
        return lo, hi
    if jnp.issubdtype(x.dtype, jnp.unsignedinteger):
        lo = jax.lax.bitcast_convert_type(x.astype(jnp.uint32), jnp.int32)
        return lo, jnp.zeros_like(lo)
    lo = x.astype(jnp.int32)
    return lo, lo >> 31


def join_labels(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """int64 ids from their int32 halves (host)."""
    low = np.asarray(lo).astype(np.int32).view(np.uint32).astype(np.int64)
    return (np.asarray(hi).astype(np.int64) << 32) | low
