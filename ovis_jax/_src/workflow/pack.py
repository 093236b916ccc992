"""Packing a results file for the evaluation server: a zip whose only member is
``results.json`` at its root (the layout the OVIS / YouTube-VIS servers read)."""

from __future__ import annotations

import contextlib
import os
import zipfile

from ovis_jax._src.errors import FormatError
from ovis_jax._src.io.read import parse_untyped, read_bytes

__all__ = ["MEMBER", "pack_results"]

#: The name the servers look for at the root of the archive.
MEMBER = "results.json"


def pack_results(source: str | os.PathLike, out: str | os.PathLike) -> int:
    """Writes ``out``, a zip holding the results as ``results.json`` (deflated), atomically.

    Args:
        source: the results: a JSON list, a ``.json.gz`` of one, or a zip holding one (it is
            repacked with the right layout). Its bytes are stored unchanged.
        out: the zip to write.

    Returns:
        The size of the zip in bytes.

    Raises:
        OSError: the input cannot be read or the output written.
        FormatError: the input is not a JSON list.
    """
    raw, label = read_bytes(source, "results")
    if not isinstance(parse_untyped(raw, label), list):
        raise FormatError(f"{label}: expected a JSON list of results (the server's format)")
    tmp = f"{os.fspath(out)}.tmp-{os.getpid()}"
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as z:
            z.writestr(MEMBER, raw)
        os.replace(tmp, out)
    finally:
        with contextlib.suppress(OSError):
            os.remove(tmp)
    return os.path.getsize(out)
