"""Assertions for testing code that produces or consumes :class:`~ovis_jax.EvalResult`."""

from __future__ import annotations

import numpy as np

__all__ = ["assert_results_equal"]


def assert_results_equal(a, b, tol: float = 1e-12, *, what: str = "") -> None:
    """Two :class:`~ovis_jax.EvalResult` agree to ``tol``: stats (same names, same order),
    precision, recall, scores, the track-length arrays and per-category rows. On failure
    prints both sides and the difference."""
    from ovis_jax._src.metrics.ap.summary import format_summary

    head = f"{what}: " if what else ""
    sides = f"\n--- a ---\n{format_summary(a)}\n--- b ---\n{format_summary(b)}"
    assert list(a.stats) == list(b.stats), f"{head}stat names {list(a.stats)} vs {list(b.stats)}"
    sa, sb = np.array(list(a.stats.values())), np.array(list(b.stats.values()))
    if not np.allclose(sa, sb, rtol=0, atol=tol):
        raise AssertionError(
            f"{head}stats differ\n keys {list(a.stats)}\n a    {sa.tolist()}\n b    "
            f"{sb.tolist()}\n diff {(sb - sa).tolist()}{sides}"
        )
    for name in ("precision", "recall", "scores", "length_precision", "length_recall"):
        x, y = getattr(a, name, None), getattr(b, name, None)
        if x is None or y is None:  # not computed on one side (the streaming evaluator)
            continue
        assert x.shape == y.shape, f"{head}{name} shape {x.shape} vs {y.shape}"
        bad = np.argwhere(np.abs(x - y) > tol)
        if bad.size:
            i = tuple(int(k) for k in bad[0])
            raise AssertionError(
                f"{head}{name} differs at {len(bad)} entries; first {i}: a {x[i]!r} b {y[i]!r} "
                f"diff {y[i] - x[i]!r}{sides}"
            )
    for ra, rb in zip(a.per_category, b.per_category, strict=True):
        keys = ("AP", "AP50", "AP75", "AR100")
        same = ra["id"] == rb["id"] and all(abs(ra[k] - rb[k]) <= tol for k in keys)
        assert same, f"{head}per-category row differs: a {ra} b {rb}"
