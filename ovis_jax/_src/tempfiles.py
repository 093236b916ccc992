"""Temporary files beside an output, with the mode an ordinary new file gets.

Every output is written to a temporary file of its own call in the output's folder and renamed
over the target at the end. :func:`tempfile.mkstemp` creates that file with mode 0600; renamed,
it would leave the user an output that nobody else can read, so the mode is set to what
``open(path, "w")`` would give (0666 without the process's umask).
"""

from __future__ import annotations

import os
import tempfile

__all__ = ["temp_beside"]


def _umask() -> int:
    """The process's umask: read from ``/proc`` where it is (no change to process state),
    else set and restored."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def temp_beside(path: str) -> tuple[int, str]:
    """A new temporary file in ``path``'s folder, named after it (``.NAME.XXXX.tmp``).

    Returns:
        ``(fd, temp path)``, as :func:`tempfile.mkstemp`; the file's mode is 0666 & ~umask.

    Raises:
        OSError: the folder cannot be written.
    """
    folder, name = os.path.split(os.path.abspath(path))
    fd, temp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
    except OSError:
        pass  # a file system without modes: its default stands
    return fd, temp
