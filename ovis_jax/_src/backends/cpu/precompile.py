"""A user's first run: two CPU kernels compiled in a helper process, beside the main one.

On a first run (numba's disk cache lacks the kernels) the command line calls :func:`start`: a
child process (``python -m ovis_jax._src.backends.cpu.precompile``) compiles
``group_intersections`` and ``accumulate`` for the signatures every evaluation uses and saves
them in the same cache, printing each kernel's name once it is saved. Meanwhile the main
process reads the files (compiling the JSON walk and the string scanner on first use) and,
just before its first call of one of the two kernels, waits for the child to report it
(:func:`wait_for`): numba then loads it from the cache instead of compiling it again. On two
cores this takes about a second off a first run; later runs never start a child.

Best effort throughout: a child that cannot start, fails or reports nothing costs only its
CPU time, and the main process compiles as it would have. The child writes nothing but
numba's cache files (atomically) and prints nothing but the kernels' names; :func:`stop` ends
it when the command ends. ``tests/test_precompile.py`` checks that :func:`signatures` are the ones
an evaluation compiles (a stale signature would only compile something unused).
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading

__all__ = ["signatures", "start", "stop", "wait_for"]

logger = logging.getLogger(__name__)

#: The longest a main process waits for one kernel before compiling it itself.
WAIT_S = 120.0

_changed = threading.Condition()
_child: subprocess.Popen | None = None
_reported: set[str] = set()
_ended = True  # no child, or its output has ended


def signatures() -> dict[str, tuple]:
    """The child's kernels (in the order it compiles them) and their numba signatures."""
    from numba import types as t

    def arr(dtype, ndim: int = 1):
        return t.Array(dtype, ndim, "C")

    i64, f64 = arr(t.int64), arr(t.float64)
    side = t.Tuple((arr(t.uint8), *[i64] * 8))  # a MaskTable's arrays (similarity/cpu._side)
    return {
        "group_intersections": (side, side, i64, i64, i64, i64, i64, t.int64, t.int64, i64),
        "accumulate": (
            i64, i64, i64, f64, arr(t.boolean, 4), arr(t.boolean, 4), arr(t.int64, 3), i64,
            f64, i64, arr(t.int64, 3), t.int64, t.int64, arr(t.float64, 4),
            arr(t.float64, 3), arr(t.float64, 4),
        ),
    }  # fmt: skip


def start() -> None:
    """Starts the child (once per process; nothing if it cannot start)."""
    global _child, _ended
    with _changed:
        if _child is not None:
            return
        try:
            child = subprocess.Popen(
                [sys.executable, "-m", __name__],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
        except OSError as e:  # no process to spare: compile in this one
            logger.debug("no precompiling process: %s", e)
            return
        _child, _ended = child, False
    threading.Thread(target=_read, args=(child,), daemon=True).start()


def _read(child: subprocess.Popen) -> None:
    """The child's output, name by name, until it ends (a daemon thread)."""
    global _ended
    try:
        for line in child.stdout:
            with _changed:
                _reported.add(line.strip())
                _changed.notify_all()
    except (OSError, ValueError):
        pass
    finally:
        child.stdout.close()
    with _changed:
        if _child is child:
            _ended = True
        _changed.notify_all()


def wait_for(name: str) -> None:
    """Returns once the child has saved kernel ``name``, has ended, or :data:`WAIT_S` passed;
    at once without a child."""
    with _changed:
        _changed.wait_for(lambda: _ended or name in _reported, timeout=WAIT_S)


def stop() -> None:
    """Ends the child if it still runs (its finished kernels stay in the cache)."""
    global _child, _ended
    with _changed:
        child, _child, _ended = _child, None, True
        _reported.clear()
        _changed.notify_all()
    if child is None:
        return
    if child.poll() is None:
        child.terminate()
    try:
        child.wait(timeout=5)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def main() -> None:
    from ovis_jax._src.backends.cpu.startup import start_numba

    start_numba()
    from ovis_jax._src.backends.cpu import kernels

    for name, sig in signatures().items():
        getattr(kernels, name).compile(sig)
        print(name, flush=True)


if __name__ == "__main__":
    main()
