"""The official ``summarize()``: its numbers and its printed lines, from the ``eval`` arrays.

Each number is the mean of the entries > -1 of a slice of ``eval["precision"]`` (AP) or
``eval["recall"]`` (AR), -1 if there is none. The slice is chosen from the evaluator's
*current* ``params`` as the official code chooses it: the IoU threshold by exact equality with
``params.iouThrs``, the area (and occlusion) range by its label in ``params.areaRngLbl``
(``occRngLbl``), the max-detection cut by its value in ``params.maxDets`` (the second and third
cuts are read as ``params.maxDets[1]`` / ``[2]``). A slice that selects nothing gives -1; index
errors (fewer than three ``maxDets``) surface as the official's do.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = ["summary_lines"]

_YTVIS_LINE = " {:<18} {} @[ IoU={:<9} | area={:>6s} | maxDets={:>3d} ] = {:0.3f}"
_OVIS_LINE = " {:<18} {} @[ IoU={:<9} | area={:>6s} | occ={:>6s} | maxDets={:>3d} ] = {:0.3f}"


def _value(eval_: dict, p: Any, ap: bool, thr, area: str, occ: str | None, max_det) -> Any:
    """The mean of the defined entries of one slice (-1 if none), as a NumPy or int scalar."""
    aind = [i for i, lbl in enumerate(p.areaRngLbl) if lbl == area]
    mind = [i for i, m in enumerate(p.maxDets) if m == max_det]
    index: tuple = (aind,)
    if occ is not None:
        index = (aind, [i for i, o in enumerate(p.occRngLbl) if o == occ])
    s = eval_["precision"] if ap else eval_["recall"]
    if thr is not None:
        s = s[np.where(thr == p.iouThrs)[0]]
    s = s[(slice(None),) * (3 if ap else 2) + index + (mind,)]
    return np.mean(s[s > -1]) if len(s[s > -1]) else -1


def _specs(p: Any, ovis: bool) -> Iterator[tuple[bool, float | None, str, str, int]]:
    """(is AP, IoU threshold, area label, occlusion label, maxDets) per number, in order;
    ``p.maxDets`` is read number by number (a short list fails where the official fails)."""
    occs = ("light", "medium", "heavy") if ovis else ()
    yield True, None, "all", "all", 100
    yield True, 0.5, "all", "all", p.maxDets[2]
    yield True, 0.75, "all", "all", p.maxDets[2]
    for area in ("small", "medium", "large"):
        yield True, None, area, "all", p.maxDets[2]
    for occ in occs:
        yield True, None, "all", occ, p.maxDets[2]
    for m in range(3):
        yield False, None, "all", "all", p.maxDets[m]
    for area in ("small", "medium", "large"):
        yield False, None, area, "all", p.maxDets[2]
    for occ in occs:
        yield False, None, "all", occ, p.maxDets[2]


def summary_lines(eval_: dict, p: Any, *, ovis: bool) -> Iterator[tuple[Any, str]]:
    """The official summary, number by number.

    Args:
        eval_: the evaluator's ``eval`` dict (``precision`` [T, R, K, A, M] or
            [T, R, K, A, O, M], ``recall`` [T, K, A, M] or [T, K, A, O, M]).
        p: the evaluator's current ``params``.
        ovis: the OVIS layout (18 numbers, occlusion axis and ``occ=`` column) or YouTube-VIS
            (12 numbers).

    Yields:
        ``(value, line)`` per number, in the official order; ``line`` is the official text.
    """
    iou_all = f"{p.iouThrs[0]:0.2f}:{p.iouThrs[-1]:0.2f}"
    for ap, thr, area, occ, max_det in _specs(p, ovis):
        value = _value(eval_, p, ap, thr, area, occ if ovis else None, max_det)
        title = "Average Precision" if ap else "Average Recall"
        kind = "(AP)" if ap else "(AR)"
        iou = iou_all if thr is None else f"{thr:0.2f}"
        if ovis:
            line = _OVIS_LINE.format(title, kind, iou, area, occ, max_det, value)
        else:
            line = _YTVIS_LINE.format(title, kind, iou, area, max_det, value)
        yield value, line
