"""Packing a results file for the evaluation server: a zip whose only member is
``results.json`` at its root (the layout the OVIS / YouTube-VIS servers read)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import zipfile

from ovis_jax._src.errors import FormatError
from ovis_jax._src.io.read import parse_untyped, read_bytes
from ovis_jax._src.io.rle_compress import compress_rles
from ovis_jax._src.io.vis_results import uncompressed_frames
from ovis_jax._src.tempfiles import temp_beside

__all__ = ["MEMBER", "pack_results"]

logger = logging.getLogger(__name__)

#: The name the servers look for at the root of the archive.
MEMBER = "results.json"


def pack_results(
    source: str | os.PathLike,
    out: str | os.PathLike,
    *,
    compress: bool = False,
    max_bytes: int | None = None,
) -> int:
    """Writes ``out``, a zip holding the results as ``results.json`` (deflated), atomically.

    Args:
        source: the results: a JSON list, a ``.json.gz`` of one, or a zip holding one (it is
            repacked with the right layout). Its bytes are stored unchanged, unless
            ``compress`` rewrites uncompressed RLE.
        out: the zip to write.
        compress: rewrite every uncompressed RLE (``counts`` a list, which the official
            ``loadRes`` and hence the servers refuse) as the compressed string pycocotools'
            ``encode`` gives for the same mask; the JSON is then written anew (compact). Without
            it such frames are kept and a warning is logged.
        max_bytes: the cap on the input's size once decompressed (see ``load_results``).

    Returns:
        The size of the zip in bytes.

    Raises:
        OSError: the input cannot be read or the output written.
        FormatError: the input is not a JSON list, or an uncompressed RLE to rewrite is
            malformed.
    """
    raw, label = read_bytes(source, "results", max_bytes=max_bytes)
    data = parse_untyped(raw, label)
    if not isinstance(data, list):
        raise FormatError(f"{label}: expected a JSON list of results (the server's format)")
    found = uncompressed_frames(data)
    if found and compress:
        raw = json.dumps(compress_rles(data), separators=(",", ":")).encode()
    elif found:
        logger.warning(
            "%d result(s) hold uncompressed RLE ('counts' a list; first results[%d], frame %d), "
            "which the server rejects: pack with compress=True",
            len(found), *found[0],
        )  # fmt: skip
    fd, tmp = temp_beside(os.fspath(out))  # this call's own
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as z:
            z.writestr(MEMBER, raw)
        os.replace(tmp, out)
    finally:
        with contextlib.suppress(OSError):
            os.remove(tmp)
    return os.path.getsize(out)
