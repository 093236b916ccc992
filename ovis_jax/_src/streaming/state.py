"""The streaming evaluator's state: a fixed-shape pytree that owns its algebra.

:class:`StreamingState` is what :class:`~ovis_jax.streaming.StreamingEvaluator` accumulates.
Like a ``clu.metrics.Metric`` it can be combined: :meth:`StreamingState.merge` joins two states
of disjoint sets of videos, and :meth:`StreamingState.reduce` folds states stacked along a
leading axis (``process_allgather``'s output, a ``vmap`` or ``shard_map`` result) with
``lax.scan`` over ``merge``. Both are pure and jittable; a video updated in two operands is not
an error inside jit but is marked in ``conflict`` (the evaluator's ``compute`` then raises).

Shapes use the legend of :mod:`ovis_jax._src.legend` (V videos, N predictions per video, G
ground-truth tracks per video).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["FIELDS", "FINGERPRINT_BYTES", "StreamingState", "check_fingerprint", "check_like"]

FINGERPRINT_BYTES = 16


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class StreamingState:
    """What a streaming evaluator accumulates: fixed shapes for the whole ground truth.

    Row v is the v-th video of the ground truth in ascending id order; column n is prediction n
    of that video (its index in the ``N`` axis of the batch that updated it).

    Attributes:
        inter: int32[V, N, G] exact intersection (pixels, summed over frames) of each prediction
            with each ground-truth track of its video; tracks in ground-truth file order.
        pred_area: int32[V, N] pixels of each prediction, summed over the video's frames.
        pred_frames: int32[V, N] number of frames in which the prediction has pixels.
        score: float32[V, N].
        label: int32[V, N] category ids: their low 32 bits (the id itself for ids in int32).
        label_hi: int32[V, N] the high 32 bits of the category ids (0 or -1 for ids in
            int32), so that every 64-bit id a results file may hold is kept exactly.
        valid: bool[V, N] whether the entry is a real prediction.
        updated: bool[V] whether the video was updated (a video never updated has no
            predictions).
        conflict: bool[V] whether the video was updated more than once inside a jitted update,
            :meth:`merge` or :meth:`reduce` (the evaluator's ``compute`` then raises).
        fingerprint: uint8[16] identifies the ground truth the state was made for.
    """

    inter: jax.Array
    pred_area: jax.Array
    pred_frames: jax.Array
    score: jax.Array
    label: jax.Array
    label_hi: jax.Array
    valid: jax.Array
    updated: jax.Array
    conflict: jax.Array
    fingerprint: jax.Array

    @classmethod
    def empty(
        cls, *, num_videos: int, max_predictions: int, num_tracks: int, fingerprint: Any
    ) -> StreamingState:
        """A state with no video updated: V = ``num_videos``, N = ``max_predictions``,
        G = ``num_tracks``."""
        v, n, g = num_videos, max_predictions, num_tracks
        return cls(
            inter=jnp.zeros((v, n, g), jnp.int32),
            pred_area=jnp.zeros((v, n), jnp.int32),
            pred_frames=jnp.zeros((v, n), jnp.int32),
            score=jnp.zeros((v, n), jnp.float32),
            label=jnp.zeros((v, n), jnp.int32),
            label_hi=jnp.zeros((v, n), jnp.int32),
            valid=jnp.zeros((v, n), jnp.bool_),
            updated=jnp.zeros((v,), jnp.bool_),
            conflict=jnp.zeros((v,), jnp.bool_),
            fingerprint=jnp.asarray(fingerprint, jnp.uint8),
        )

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> StreamingState:
        """The state of a dict holding its fields (what ``orbax`` restores without a target).

        Raises:
            ValueError: a field is missing (named).
        """
        if "label_hi" not in raw and "label" in raw:  # a state saved before label_hi existed
            raw = {**raw, "label_hi": np.asarray(raw["label"]) >> 31}
        missing = [f for f in FIELDS if f not in raw]
        if missing:
            raise ValueError(
                f"not a StreamingEvaluator state: missing {', '.join(missing)} "
                f"(has {', '.join(map(str, raw))})"
            )
        return cls(**{f: raw[f] for f in FIELDS})

    def merge(self, other: StreamingState) -> StreamingState:
        """The state of both operands' videos (pure, jittable).

        The operands should hold disjoint sets of videos of the same ground truth (nothing is
        checked here). A video updated in both keeps ``other``'s row and is marked in
        ``conflict``; the fingerprint is ``self``'s. Associative, and commutative up to the
        rows of conflicting videos.
        """

        def pick(x, y):
            sel = other.updated.reshape(other.updated.shape + (1,) * (x.ndim - 1))
            return jnp.where(sel, y, x)

        return StreamingState(
            inter=pick(self.inter, other.inter),
            pred_area=pick(self.pred_area, other.pred_area),
            pred_frames=pick(self.pred_frames, other.pred_frames),
            score=pick(self.score, other.score),
            label=pick(self.label, other.label),
            label_hi=pick(self.label_hi, other.label_hi),
            valid=pick(self.valid, other.valid),
            updated=self.updated | other.updated,
            conflict=self.conflict | other.conflict | (self.updated & other.updated),
            fingerprint=self.fingerprint,
        )

    def reduce(self) -> StreamingState:
        """The merge of states stacked along a leading axis (pure, jittable).

        ``self`` is a stacked state (every leaf with an extra leading axis of size Z >= 1, as
        ``process_allgather(state, tiled=False)`` or a ``vmap`` returns it); the result is
        ``s[0].merge(s[1]).merge(s[2])...``, computed with ``lax.scan`` over :meth:`merge`.
        """
        first = jax.tree_util.tree_map(lambda x: x[0], self)
        rest = jax.tree_util.tree_map(lambda x: x[1:], self)

        def step(acc, nxt):
            return acc.merge(nxt), None

        out, _ = jax.lax.scan(step, first, rest)
        return out


FIELDS = tuple(f.name for f in dataclasses.fields(StreamingState))


def fingerprint_hex(fp: Any) -> str:
    """The hex digits of a fingerprint (its first 16 bytes)."""
    return bytes(np.asarray(fp, dtype=np.uint8).reshape(-1)[:FINGERPRINT_BYTES]).hex()


def check_fingerprint(fp: Any, expected: np.ndarray, *, stacked: bool = False) -> None:
    """Raises unless ``fp`` (host uint8[16]; with ``stacked``, each row of uint8[Z, 16]) is
    ``expected``.

    Raises:
        ValueError: naming both fingerprints.
    """
    fp = np.asarray(fp)
    for row in fp if stacked and fp.ndim == 2 else [fp]:
        if row.shape != expected.shape or not np.array_equal(row, expected):
            raise ValueError(
                f"this evaluator state was made for other ground truth (fingerprint "
                f"{fingerprint_hex(row)}; this evaluator's ground truth has "
                f"{fingerprint_hex(expected)}): use it with the evaluator of the ground truth "
                "it was made for"
            )


def check_like(state: StreamingState, abstract: StreamingState, max_predictions: int) -> None:
    """Raises unless every field of ``state`` has the shape and dtype of ``abstract``'s (no
    device work: only metadata is read).

    Raises:
        ValueError: naming the field, what it is and what was expected.
    """
    for name in FIELDS:
        got, want = getattr(state, name), getattr(abstract, name)
        if tuple(np.shape(got)) != tuple(want.shape) or np.dtype(got.dtype) != want.dtype:
            raise ValueError(
                f"evaluator state field {name!r} is {np.dtype(got.dtype)}"
                f"{list(np.shape(got))}, expected {want.dtype}{list(want.shape)} (was it "
                f"made with max_predictions={max_predictions}?)"
            )
