"""Shared fixtures and helpers: a tiny hand-built OVIS dataset (10x10 frames) and its results,
:func:`assert_results_equal`, compile counting and the jit / no-jit fixture."""

from __future__ import annotations

import contextlib
import copy
import logging
import re
from collections.abc import Iterator

import jax
import numpy as np
import pytest

from ovis_jax._src.masks.rle import encode_dense

H, W = 10, 10


_CACHE_OPTIONS = {
    "jax_compilation_cache_dir": None,
    "jax_persistent_cache_min_compile_time_secs": 0.0,
    "jax_persistent_cache_min_entry_size_bytes": 0,
}


@pytest.fixture(autouse=True, scope="session")
def _private_xla_cache(request, tmp_path_factory):
    """A persistent XLA compilation cache private to this checkout's tests, so that the quick
    loop (``pytest -m "not slow"``) loads the JAX kernels compiled by an earlier run instead of
    compiling them again: pytest's cache directory (``.pytest_cache/d/xla``), or a temporary one
    without pytest's cache plugin. The CLI's cache (``~/.cache/ovis_jax/xla`` by default) is
    pointed there too, for the CLI runs in this process and the processes the tests start."""
    cache = getattr(request.config, "cache", None)
    path = str(cache.mkdir("xla") if cache is not None else tmp_path_factory.mktemp("xla_cache"))
    before = {k: getattr(jax.config, k) for k in _CACHE_OPTIONS}
    for k, v in {**_CACHE_OPTIONS, "jax_compilation_cache_dir": path}.items():
        jax.config.update(k, v)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OVIS_JAX_CACHE", path)
        yield
    for k, v in before.items():
        jax.config.update(k, v)


def box(r0: int, r1: int, c0: int, c1: int) -> dict:
    """Compressed RLE of a 10x10 frame with rows r0:r1, columns c0:c1 set."""
    m = np.zeros((H, W), dtype=np.uint8)
    m[r0:r1, c0:c1] = 1
    return encode_dense(m)


def _tiny() -> tuple[dict, list]:
    # Every frame gets its own dict (no aliasing), so that tests can edit one frame.
    def a():
        return box(0, 5, 0, 5)

    def b():
        return box(5, 10, 5, 10)

    def c():
        return box(2, 8, 2, 8)

    gt = {
        "videos": [
            {"id": 1, "width": W, "height": H, "length": 3, "file_names": ["a", "b", "c"]},
            {"id": 2, "width": W, "height": H, "length": 2, "file_names": ["d", "e"]},
        ],
        "categories": [
            {"id": 1, "name": "person", "supercategory": "object"},
            {"id": 2, "name": "dog", "supercategory": "object"},
        ],
        "annotations": [
            {
                "id": 1,
                "video_id": 1,
                "category_id": 1,
                "iscrowd": 0,
                "segmentations": [a(), a(), None],
                "areas": [25, 25, None],
                "bboxes": [[0, 0, 5, 5], [0, 0, 5, 5], None],
                "occlusion": ["no_occlusion", "slight_occlusion", None],
            },
            {
                "id": 2,
                "video_id": 1,
                "category_id": 2,
                "iscrowd": 0,
                "segmentations": [b(), b(), b()],
                "areas": [25, 25, 25],
                "bboxes": [[5, 5, 5, 5]] * 3,
                "occlusion": ["severe_occlusion"] * 3,
            },
            {
                "id": 3,
                "video_id": 2,
                "category_id": 1,
                "iscrowd": 0,
                "segmentations": [c(), c()],
                "areas": [36, 36],
                "bboxes": [[2, 2, 6, 6]] * 2,
                "occlusion": ["slight_occlusion", "no_occlusion"],
            },
        ],
    }
    results = [
        {"video_id": 1, "category_id": 1, "score": 0.9, "segmentations": [a(), a(), None]},
        {"video_id": 1, "category_id": 2, "score": 0.8, "segmentations": [b(), c(), b()]},
        {"video_id": 2, "category_id": 1, "score": 0.7, "segmentations": [c(), None]},
        {"video_id": 2, "category_id": 2, "score": 0.3, "segmentations": [a(), a()]},
    ]
    return gt, results


_TINY = _tiny()


@pytest.fixture
def tiny() -> tuple[dict, list]:
    """A fresh (ground truth, results) pair in OVIS format, safe to modify."""
    return copy.deepcopy(_TINY)


@pytest.fixture
def tiny_ytvis(tiny) -> tuple[dict, list]:
    """The same pair in YouTube-VIS format (no occlusion labels)."""
    gt, results = tiny
    for a in gt["annotations"]:
        del a["occlusion"]
    return gt, results


class CompileLog:
    """Counts XLA compilations by function name while :func:`count_compiles` is active."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def count(self, name: str) -> int:
        """Compilations of ``jit(name)`` seen so far."""
        return sum(n == name for n in self.names)


class _CompileHandler(logging.Handler):
    _PATTERN = re.compile(r"^Compiling jit\(([^)]*)\)")

    def __init__(self, log: CompileLog) -> None:
        super().__init__(level=logging.DEBUG)
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        m = self._PATTERN.match(record.getMessage())
        if m:
            self.log.names.append(m.group(1))


@contextlib.contextmanager
def count_compiles() -> Iterator[CompileLog]:
    """Records every compilation (``jax.log_compiles``) inside the block, by function name."""
    log = CompileLog()
    handler = _CompileHandler(log)
    logger = logging.getLogger("jax")
    logger.addHandler(handler)
    try:
        with jax.log_compiles(True):
            yield log
    finally:
        logger.removeHandler(handler)


@pytest.fixture(params=[True, pytest.param(False, marks=pytest.mark.slow)], ids=["jit", "no_jit"])
def jit_mode(request) -> Iterator[bool]:
    """Runs a kernel test twice: jitted, and under ``jax.disable_jit()`` (eager; marked ``slow``:
    eagerly every primitive compiles on its own, seconds per kernel)."""
    if request.param:
        yield True
    else:
        with jax.disable_jit():
            yield False
