"""Writing an evaluation's full arrays (``--arrays FILE.npz``)."""

from __future__ import annotations

import os

import numpy as np

from ovis_jax._src.metrics.ap.summary import EvalResult
from ovis_jax._src.tempfiles import temp_beside

__all__ = ["arrays_of", "save_arrays", "write_arrays"]


def _ranges(ranges) -> tuple[np.ndarray, np.ndarray]:
    names = np.asarray([r[0] for r in ranges], dtype=str)
    bounds = np.asarray([(r[1], r[2]) for r in ranges], dtype=np.float64).reshape(-1, 2)
    return names, bounds


def arrays_of(result: EvalResult) -> dict[str, np.ndarray]:
    """The arrays and parameters of an evaluation, by name (plain NumPy, no pickled objects).

    Keys: ``precision`` [T, R, K, A, O, M], ``recall`` [T, K, A, O, M], ``scores``
    [T, R, K, A, O, M] (official layout, -1 where undefined), ``iou_thresholds`` [T],
    ``recall_thresholds`` [R], ``category_ids`` [K], ``category_names`` [K],
    ``area_range_names`` [A] / ``area_ranges`` [A, 2], ``occlusion_range_names`` [O] /
    ``occlusion_ranges`` [O, 2], ``max_dets`` [M], ``format``; and, when the track-length pass
    ran, ``length_precision`` [T, R, K, L, 1, M], ``length_recall`` [T, K, L, 1, M],
    ``length_range_names`` [L] / ``length_ranges`` [L, 2].
    """
    params = result.params
    n_o = result.precision.shape[4]
    area_names, area_bounds = _ranges(params.area_ranges)
    occ_names, occ_bounds = _ranges(params.occlusion_ranges[:n_o])
    out = {
        "precision": result.precision,
        "recall": result.recall,
        "iou_thresholds": params.iou_array,
        "recall_thresholds": params.recall_array,
        "category_ids": np.asarray(result.category_ids, dtype=np.int64),
        "category_names": np.asarray(result.category_names, dtype=str),
        "area_range_names": area_names,
        "area_ranges": area_bounds,
        "occlusion_range_names": occ_names,
        "occlusion_ranges": occ_bounds,
        "max_dets": np.asarray(params.max_dets, dtype=np.int64),
        "format": np.asarray(result.format),
    }
    if result.scores is not None:
        out["scores"] = result.scores
    if result.length_precision is not None and result.length_recall is not None:
        names, bounds = _ranges(result.length_ranges)
        out.update(
            length_precision=result.length_precision,
            length_recall=result.length_recall,
            length_range_names=names,
            length_ranges=bounds,
        )
    return out


def write_arrays(result: EvalResult, path: str | os.PathLike) -> None:
    """Writes :func:`arrays_of` as a compressed ``.npz`` archive to exactly ``path`` (no
    ``.npz`` suffix added, not atomic: see :func:`save_arrays`)."""
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays_of(result))


def save_arrays(result: EvalResult, path: str | os.PathLike) -> None:
    """Writes :func:`arrays_of` to a compressed ``.npz`` file (read it back with
    ``numpy.load(path)``; no pickle needed), through a temporary file of this call's own in the
    same folder and a rename."""
    path = os.fspath(path)
    fd, tmp = temp_beside(path)
    os.close(fd)
    try:
        write_arrays(result, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
