"""The accumulated precision / recall curves in a compact layout, and the memory check.

The official arrays precision float64[T, R, K, A, O, M] (and scores, the same size) grow with
the number of categories K times every area, occlusion and max-detection cut: 100,000
categories take 9 GiB each. The summary, the per-category rows, the groups and the plots read
only a few (area, occlusion, maxDet) slots, and only categories with ground truth are ever
defined (every entry of the others is -1). A :class:`CurveLayout` names what an accumulation
keeps; :class:`Curves` holds it as precision float64[T, R, K, I] with K the kept categories and
I the kept slots. A slot's ``[T, R, K]`` slice holds, in the same order, exactly the defined
entries of the official array's ``[:, :, :, a, o, m]`` slice, so every mean over it is the same
float64 number. The full layout (every category, every slot) is the official arrays
themselves, reshaped without a copy.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable, Iterable

import numpy as np

from ovis_jax._src.errors import ResourceError

__all__ = ["CurveLayout", "Curves", "LazyCurves", "available_memory", "check_fits"]

#: Environment variable: the bytes an evaluation may allocate for its arrays (default: the
#: memory the system reports as available).
MEMORY_LIMIT_ENV = "OVIS_JAX_MEMORY_LIMIT"


@dataclasses.dataclass(frozen=True, eq=False)
class CurveLayout:
    """Which parts of the official precision / recall arrays an accumulation keeps.

    Attributes:
        cats: int64[K] the kept categories' indices (ascending) among all ``num_categories``.
        slots: int64[A, O, M] each (area, occlusion, maxDet) slot's position on the I axis,
            -1 where it is not kept.
        num_categories: the number of categories of the ground truth.
    """

    cats: np.ndarray
    slots: np.ndarray
    num_categories: int

    @classmethod
    def full(cls, num_categories: int, shape: tuple[int, int, int]) -> CurveLayout:
        """Every category and every slot (``shape`` is (A, O, M)): the official arrays."""
        n = int(np.prod(shape))
        return cls(np.arange(num_categories), np.arange(n).reshape(shape), num_categories)

    @classmethod
    def kept(
        cls, npig: np.ndarray, keep: Iterable[tuple[int, int, int]], num_max_dets: int
    ) -> CurveLayout:
        """The categories with a not-ignored ground truth somewhere and the slots ``keep``.

        Args:
            npig: int64[K, A, O] not-ignored ground truths per category and range.
            keep: the (a, o, m) slots to keep.
            num_max_dets: M.
        """
        slots = np.full((*npig.shape[1:], num_max_dets), -1, dtype=np.int64)
        for i, slot in enumerate(sorted(set(keep))):
            slots[slot] = i
        cats = np.flatnonzero(npig.reshape(npig.shape[0], -1).any(axis=1))
        return cls(cats.astype(np.int64), slots, npig.shape[0])

    @property
    def is_full(self) -> bool:
        """Whether this is the official arrays' layout."""
        n = self.slots.size
        return self.cats.shape[0] == self.num_categories and bool(
            (self.slots.reshape(-1) == np.arange(n)).all()
        )

    @property
    def num_slots(self) -> int:
        """I, the number of kept slots."""
        return int(self.slots.max(initial=-1)) + 1

    def rows(self) -> np.ndarray:
        """int64[K] (all categories) each category's row among the kept ones, -1 if not kept."""
        out = np.full(self.num_categories, -1, dtype=np.int64)
        out[self.cats] = np.arange(self.cats.shape[0])
        return out

    def nbytes(self, n_t: int, n_r: int, *, scores: bool) -> int:
        """Bytes of the precision, recall (and scores) arrays of this layout."""
        per = n_t * self.cats.shape[0] * self.num_slots * 8
        return per * n_r * (2 if scores else 1) + per


@dataclasses.dataclass(frozen=True, eq=False)
class Curves:
    """Accumulated curves in a :class:`CurveLayout`.

    Attributes:
        layout: what is kept.
        precision: float64[T, R, K, I] (K the kept categories, I the kept slots), -1 where
            undefined.
        recall: float64[T, K, I].
        scores: float64[T, R, K, I] the score at each precision entry, or None.
    """

    layout: CurveLayout
    precision: np.ndarray
    recall: np.ndarray
    scores: np.ndarray | None = None

    def slot(self, a: int, o: int, m: int) -> tuple[np.ndarray, np.ndarray]:
        """float64[T, R, K] precision and float64[T, K] recall of slot (a, o, m) for the kept
        categories.

        Raises:
            KeyError: when the layout does not keep that slot.
        """
        s = int(self.layout.slots[a, o, m])
        if s < 0:
            raise KeyError(f"slot {(a, o, m)} is not kept by this accumulation")
        return self.precision[..., s], self.recall[..., s]

    def official(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """The official arrays precision float64[T, R, K, A, O, M], recall float64[T, K, A,
        O, M] and scores (or None), views of the full layout's arrays.

        Raises:
            ValueError: when the layout is not the full one.
        """
        if not self.layout.is_full:
            raise ValueError("the official arrays need the full layout")
        shape = self.layout.slots.shape
        p = self.precision.reshape(*self.precision.shape[:3], *shape)
        r = self.recall.reshape(*self.recall.shape[:2], *shape)
        s = None if self.scores is None else self.scores.reshape(p.shape)
        return p, r, s


class LazyCurves:
    """The full-layout :class:`Curves`, computed on first use by ``compute`` (then the
    callable and everything it holds are released) or given up front."""

    def __init__(self, compute: Callable[[], Curves] | None, value: Curves | None = None):
        self._compute = compute
        self._value = value
        self._lock = threading.Lock()

    def get(self) -> Curves:
        """The full curves (computed once)."""
        with self._lock:
            if self._value is None:
                if self._compute is None:
                    raise ValueError("the full arrays were not kept")
                self._value = self._compute()
                self._compute = None
            return self._value

    @property
    def ready(self) -> bool:
        """Whether the full curves are already computed."""
        return self._value is not None


def available_memory() -> int:
    """Bytes an evaluation may allocate: ``$OVIS_JAX_MEMORY_LIMIT`` when set, else the memory
    the system reports as available (``MemAvailable``; the physical memory where that is not
    known)."""
    limit = os.environ.get(MEMORY_LIMIT_ENV, "").strip()
    if limit:
        try:
            return int(float(limit))
        except ValueError:
            raise ValueError(f"{MEMORY_LIMIT_ENV}={limit!r}: expected a number of bytes") from None
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 62


def _size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError


def check_fits(what: str, nbytes: int, *, hint: str) -> None:
    """Refuses an allocation of ``nbytes`` for ``what`` that does not fit.

    Raises:
        ResourceError: naming ``what``, the bytes needed and available, and ``hint`` (how to
            reduce it).
    """
    budget = available_memory()
    if nbytes > budget:
        raise ResourceError(
            f"{what} would need {_size(nbytes)} of memory, more than the {_size(budget)} "
            f"available; {hint}"
        )
