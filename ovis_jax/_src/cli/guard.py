"""The shared frame of every command (``python -m ovis_jax.eval`` / ``.check`` / ``.pack`` /
``.split`` / ``.synth``): exit statuses, logging to stderr, the progress bar, and
:func:`run_guarded`, which turns every failure into one ``error:`` line.

The promise of every command: the numbers, or one ``error:`` line and exit status 2; never a
traceback, a hang or a partial output file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import NoReturn

from ovis_jax._src.errors import FormatError

__all__ = [
    "EXIT_BROKEN_PIPE",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_TERMINATED",
    "CliError",
    "ProgressBar",
    "Terminated",
    "logging_configured",
    "one_line",
    "printable_streams",
    "run_guarded",
    "version_text",
]

logger = logging.getLogger(__name__)

#: Exit statuses.
EXIT_OK = 0
EXIT_ERROR = 2  # malformed / unreadable input or output; also argparse's usage errors
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a process killed by it
EXIT_TERMINATED = 143  # 128 + SIGTERM


class CliError(Exception):
    """An error the CLI reports as one ``error:`` line (exit status 2)."""


class Terminated(BaseException):
    """Raised in the main thread when the process receives SIGTERM, so that the same cleanup
    as for Ctrl-C runs (temporary output files are removed)."""


def version_text() -> str:
    """``ovis_jax X.Y.Z`` for ``--version``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"ovis_jax {version('ovis_jax')}"
    except PackageNotFoundError:  # run from a source tree that is not installed
        return "ovis_jax (not installed)"


# --------------------------------------------------------------------------------------------
# Logging


class _Formatter(logging.Formatter):
    """``<level>: <message>`` in lower case, like the CLI's own ``warning:`` / ``error:`` lines."""

    def format(self, record: logging.LogRecord) -> str:
        text = f"{record.levelname.lower()}: {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class ProgressBar(logging.Handler):
    """Draws the package's progress records (see :mod:`ovis_jax._src.progress`) as one updating
    line on stderr; other records pass to the normal handler.

    Records carry ``(done, total, what)``. Only stage records move the bar, and only forward
    (the results pass through ``read`` / ``validate`` again after the ground truth: shown as
    detail); a counter inside a stage (e.g. videos matched) is shown as detail of the stage,
    so the display never goes backwards.
    """

    def __init__(self, stream) -> None:
        super().__init__(level=logging.INFO)
        self.stream = stream
        self.active = False
        self._stage: tuple[int, int, str] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        from ovis_jax._src.progress import is_stage_record

        if not hasattr(record, "progress"):
            return  # not a progress record (the plain handler shows it)
        done, total, what = record.progress
        detail = ""
        if is_stage_record(record):
            if self._stage is not None and done < self._stage[0]:
                detail = f" ({what})"  # an earlier stage again: the results after the ground truth
            else:
                self._stage = (done, total, what)
        elif self._stage is not None:
            detail = f" ({done}/{total} {what})"
        if self._stage is not None:
            done, total, what = self._stage
        width = 30
        filled = width * done // max(total, 1)
        line = f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {what}{detail}"
        self.stream.write("\r" + line.ljust(72))  # padded: no tail of a longer line is left
        self.active = done < total
        if not self.active:
            self.stream.write("\n")
            self._stage = None
        self.stream.flush()

    def close_line(self) -> None:
        """Ends a line left open (work that stopped before its last stage)."""
        if self.active:
            self.stream.write("\n")
            self.stream.flush()
            self.active = False


class _IsProgress(logging.Filter):
    def __init__(self, wanted: bool) -> None:
        super().__init__()
        self.wanted = wanted

    def filter(self, record: logging.LogRecord) -> bool:
        return hasattr(record, "progress") == self.wanted


@contextlib.contextmanager
def logging_configured(verbose: bool, quiet: bool) -> Iterator[None]:
    """Logs to stderr for the duration of one command, then restores the previous setup
    (commands are called repeatedly in-process by tests). Progress records become a progress
    bar when stderr is a terminal (and not ``--quiet``); with ``-v`` they are plain lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    handler.setLevel(logging.INFO if verbose else logging.WARNING)
    bar = None
    tty = hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
    if tty and not quiet and not verbose:
        bar = ProgressBar(sys.stderr)
        bar.addFilter(_IsProgress(True))
        handler.addFilter(_IsProgress(False))
    root = logging.getLogger()
    package = logging.getLogger("ovis_jax")
    saved = (root.level, package.level)
    root.addHandler(handler)
    if bar is not None:
        package.addHandler(bar)
    root.setLevel(logging.WARNING)
    # INFO only for this package: JAX's own INFO chatter (backend probing) stays hidden.
    package.setLevel(logging.INFO if verbose or bar is not None else logging.WARNING)
    try:
        yield
    finally:
        root.removeHandler(handler)
        if bar is not None:
            package.removeHandler(bar)
            bar.close_line()
        root.setLevel(saved[0])
        package.setLevel(saved[1])


def printable_streams() -> None:
    """Escapes what stdout / stderr cannot encode (e.g. a lone surrogate in a category name)
    instead of failing with UnicodeEncodeError in the middle of the output."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            with contextlib.suppress(ValueError, OSError):
                reconfigure(errors="backslashreplace")


# --------------------------------------------------------------------------------------------
# The guard


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """While the body runs, SIGTERM raises :class:`Terminated` in the main thread (so that
    ``finally`` blocks remove temporary files), as SIGINT raises KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except (ValueError, OSError):  # not allowed here (embedded interpreter)
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_guarded(body: Callable[[], None], *, verbose: bool, quiet: bool) -> int:
    """Runs a command's body with logging configured, and turns its failures into exit
    statuses with one ``error:`` line (the shared tail of every ``python -m ovis_jax.*``).

    Returns:
        0, or 2 on a malformed / unreadable input, an output that cannot be written, a usage
        problem found late or memory exhausted; 130 when interrupted, 143 when terminated,
        141 when stdout was closed early.
    """
    with logging_configured(verbose, quiet):
        try:
            with _sigterm_raises():
                body()
        except (FormatError, CliError) as e:
            _error(one_line(str(e)))
            return EXIT_ERROR
        except MemoryError:
            _error("out of memory: the inputs need more memory than is available")
            return EXIT_ERROR
        except KeyboardInterrupt:
            _error("interrupted")
            return EXIT_INTERRUPTED
        except Terminated:
            _error("terminated")
            return EXIT_TERMINATED
        except BrokenPipeError:
            # stdout closed early (e.g. piped into `head`): stop quietly, as other tools do.
            _silence_stdout()
            return EXIT_BROKEN_PIPE
        except OSError as e:  # an input that cannot be read
            _error(f"cannot read {e.filename!r} ({e.strerror or e})")
            return EXIT_ERROR
    return EXIT_OK


def exit_process(status: int) -> NoReturn:
    """Ends a command-line process with ``status`` once stdout and stderr are flushed.

    The interpreter's teardown is skipped (``os._exit``): it finalises numba's and llvmlite's
    modules for about 0.1 s and writes nothing of ours (every output is in place and every
    temporary file removed before a command returns). Only the ``python -m`` entry points and
    the console scripts call it, never :func:`main` itself.
    """
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        status = status or EXIT_BROKEN_PIPE
    except (OSError, ValueError, AttributeError):
        pass
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    logging.shutdown()
    os._exit(status)


def _error(message: str) -> None:
    with contextlib.suppress(Exception):  # stderr itself may be gone
        print(f"error: {message}", file=sys.stderr)


def _silence_stdout() -> None:
    """Points stdout at /dev/null so that the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout without a file descriptor (tests)
        pass


def one_line(message: str) -> str:
    """The message on one line (its lines joined by spaces)."""
    return " ".join(line.strip() for line in message.splitlines() if line.strip()) or repr(message)
