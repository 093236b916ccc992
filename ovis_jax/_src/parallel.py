"""Threads over cores for nogil kernels: one helper shared by the compiled paths."""

from __future__ import annotations

import concurrent.futures
import itertools
import os

import numpy as np

__all__ = ["run_chunks"]


def run_chunks(
    fn, n: int, *, cost: np.ndarray | None = None, min_cost: int = 1, max_cost: int | None = None
) -> None:
    """Calls ``fn(i0, i1)`` on ``[0, n)`` split into chunks of about equal cost, in threads.

    ``fn`` must release the GIL (a ``nogil`` kernel, or NumPy) and write disjoint outputs per
    chunk.

    Args:
        fn: the work on items ``i0:i1``.
        n: number of items.
        cost: int[n] estimated cost of each item (default 1 each).
        min_cost: below this total cost everything runs in one call, in the calling thread.
        max_cost: if set, no chunk costs much more than this (bounds ``fn``'s temporaries).
    """
    csum = np.cumsum(cost if cost is not None else np.ones(n, np.int64))
    total = int(csum[-1]) if n else 0
    workers = max(1, min(os.cpu_count() or 1, n))
    chunks = 4 * workers if total >= min_cost else 1
    if max_cost:
        chunks = max(chunks, -(-total // max_cost))
    goals = np.linspace(0, total, chunks + 1)[1:-1]
    bounds = np.unique(np.concatenate([[0], np.searchsorted(csum, goals) + 1, [n]]))
    bounds = np.minimum(bounds, n).tolist()
    spans = list(itertools.pairwise(bounds)) or [(0, n)]
    if workers <= 1 or len(spans) == 1:
        for i0, i1 in spans:
            fn(i0, i1)
        return
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda span: fn(*span), spans))
