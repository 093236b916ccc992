"""Progress and timings of long work, reported through :mod:`logging` (the library never prints).

:func:`report` logs an INFO record carrying ``record.progress = (done, total, what)``. The CLI
renders such records as a progress bar on stderr; any other logging setup sees ordinary
messages (at most about one per 5 % of the work).

Two kinds of progress records exist: *stage* records (:func:`stage`, :func:`finished`; they also
carry ``record.progress_stage = True``) count the stages of :data:`STAGES`, and *counter*
records (:func:`report`) count the units of work inside a stage. A display must move only with
the stage records and show counters as detail of the current stage: a counter restarts at 0 in
every stage, and the ground truth and the results each pass through ``read`` and ``validate``,
so drawing every record as the bar's position makes it go backwards. :class:`Stopwatch` times
the stages of an evaluation for ``EvalResult.timings``.
"""

from __future__ import annotations

import logging
import time

__all__ = ["STAGES", "Stopwatch", "finished", "is_stage_record", "report", "stage"]

#: The stages every backend reports, in order (a stage a backend fuses with another is
#: reported when it begins all the same).
STAGES = ("read", "validate", "decode", "intersections", "matching")


class Stopwatch:
    """Seconds per stage: ``lap(name)`` closes the stage that began at the previous lap (or at
    construction); ``timings`` holds them in order."""

    def __init__(self) -> None:
        self._last = time.perf_counter()
        self.timings: dict[str, float] = {}

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.timings[stage] = now - self._last
        self._last = now


def report(logger: logging.Logger, done: int, total: int, what: str) -> None:
    """Logs that ``done`` of ``total`` units of ``what`` are finished (rate-limited to ~20 steps).

    Args:
        logger: the module's logger.
        done: units finished so far.
        total: all units.
        what: what a unit is, e.g. ``"videos"``.
    """
    if total <= 0 or not logger.isEnabledFor(logging.INFO):
        return
    step = max(1, total // 20)
    if done == total or done % step == 0:
        logger.info(
            "%s: %d/%d %s", logger.name, done, total, what, extra={"progress": (done, total, what)}
        )


def stage(logger: logging.Logger, name: str) -> None:
    """Logs that stage ``name`` (one of :data:`STAGES`) begins, as a progress record."""
    i = STAGES.index(name)
    logger.info(
        "stage %d/%d: %s",
        i + 1,
        len(STAGES),
        name,
        extra={"progress": (i, len(STAGES), name), "progress_stage": True},
    )


def finished(logger: logging.Logger) -> None:
    """Logs that all stages are done (the CLI's progress bar then ends its line)."""
    n = len(STAGES)
    logger.info("stages done", extra={"progress": (n, n, "done"), "progress_stage": True})


def is_stage_record(record: logging.LogRecord) -> bool:
    """Whether a progress record counts stages (:func:`stage`, :func:`finished`) rather than
    the units of one stage (:func:`report`)."""
    return bool(getattr(record, "progress_stage", False))
