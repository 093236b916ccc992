"""Reading an input file: plain JSON, a ``.json.gz`` or a zip archive holding it, and the JSON
decoders (the msgspec fast path with typed structs, the general untyped objects, the standard
library as the last resort)."""

from __future__ import annotations

import functools
import gc
import gzip
import io
import json
import logging
import os
import zipfile
import zlib
from typing import Any

import msgspec

from ovis_jax._src import progress
from ovis_jax._src.errors import FormatError
from ovis_jax._src.io.segments import FastFile
from ovis_jax._src.io.validate import show

__all__ = [
    "TYPED_GT",
    "TYPED_RESULTS",
    "UNTYPED",
    "TypedGroundTruth",
    "TypedTrack",
    "gc_paused",
    "parse",
    "parse_untyped",
    "read_bytes",
    "read_source",
]

logger = logging.getLogger(__name__)


def gc_paused(fn):
    """Runs ``fn`` with Python's cyclic garbage collector paused (restored afterwards).

    Parsing and validating a file allocates millions of small objects and no reference cycles;
    the collector's generation scans then cost 35-45 % of ``json.load`` (measured, benchmarks/
    NOTES.md). Reference counting still frees everything as usual.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            if was_enabled:
                gc.enable()

    return wrapper


class TypedTrack(msgspec.Struct):
    """A result or annotation as the fast path parses it: ``segmentations`` stays a raw JSON
    slice of the file (read by :mod:`ovis_jax._src.io.segjson`), the other keys are parsed untyped
    and validated like any parsed object. Unknown keys are skipped."""

    segmentations: msgspec.Raw
    id: Any = msgspec.UNSET
    video_id: Any = msgspec.UNSET
    category_id: Any = msgspec.UNSET
    score: Any = msgspec.UNSET
    iscrowd: Any = msgspec.UNSET
    areas: Any = msgspec.UNSET
    occlusion: Any = msgspec.UNSET


class TypedGroundTruth(msgspec.Struct):
    videos: Any
    categories: Any
    annotations: list[TypedTrack]


TYPED_RESULTS = msgspec.json.Decoder(list[TypedTrack])
TYPED_GT = msgspec.json.Decoder(TypedGroundTruth)
UNTYPED = msgspec.json.Decoder()


def parse(raw: bytes, decoder: msgspec.json.Decoder, label: str) -> Any:
    """Parses JSON bytes: the fast path's typed structs when the file has the expected shape
    and every segmentation list is in the common form (see :mod:`ovis_jax._src.io.segjson`), else
    the general untyped objects; the standard library's parser is the last resort (it reads
    numbers that overflow float64 as infinities, which validation then names)."""
    from ovis_jax._src.io import segjson

    try:
        typed = decoder.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        typed = None
    if typed is not None:
        tracks = typed.annotations if isinstance(typed, TypedGroundTruth) else typed
        segments = segjson.read_segmentations(raw, [t.segmentations for t in tracks])
        if segments is not None:
            return FastFile(typed, tracks, segments)
        del typed, tracks
    return parse_untyped(raw, label)


def parse_untyped(raw: bytes, label: str) -> Any:
    """JSON bytes as plain Python objects (msgspec; the standard library as the last resort,
    for numbers that overflow float64 or NaN / Infinity, which validation then names)."""
    try:
        return UNTYPED.decode(raw)
    except (msgspec.DecodeError, RecursionError) as e:
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise FormatError(f"{label} is not valid JSON: {e}") from None


def read_bytes(path: str | os.PathLike, what: str) -> tuple[bytes, str]:
    """A JSON file's bytes, from the file itself, a ``.gz`` of it, or a zip archive holding it
    (its only ``.json`` member, or ``results.json``), and the label naming it in messages.

    Raises:
        OSError: the file cannot be read (``FileNotFoundError`` when it does not exist).
        FormatError: a corrupt archive, or a zip without exactly one JSON member to read.
    """
    with open(path, "rb") as f:
        raw = f.read()
    label = f"{what} file {os.fspath(path)!r}"
    if raw.startswith(b"\x1f\x8b"):
        try:
            return gzip.decompress(raw), label
        except (OSError, EOFError, zlib.error) as e:
            raise FormatError(f"{label}: corrupt gzip data ({e})") from None
    if raw.startswith(b"PK\x03\x04") or raw.startswith(b"PK\x05\x06"):
        return _zip_member(raw, label)
    return raw, label


def _zip_member(raw: bytes, label: str) -> tuple[bytes, str]:
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            names = [n for n in z.namelist() if not n.endswith("/")]
            jsons = [n for n in names if n.lower().endswith(".json")]
            if "results.json" in names:
                name = "results.json"
            elif len(jsons) == 1:
                name = jsons[0]
            else:
                raise FormatError(
                    f"{label} is a zip archive with {len(jsons)} JSON members "
                    f"({show(names)}): expected one, e.g. results.json at its root"
                )
            return z.read(name), f"{label} (member {name!r})"
    except (zipfile.BadZipFile, zlib.error, EOFError) as e:
        raise FormatError(f"{label}: corrupt zip archive ({e})") from None


def read_source(source: Any, what: str, decoder: msgspec.json.Decoder) -> Any:
    """A path's parsed contents (see :func:`read_bytes` and :func:`parse`), or an
    already-parsed object as is.

    Raises:
        OSError: the file cannot be read (``FileNotFoundError`` when it does not exist).
        FormatError: it is not JSON (nor a gzip or zip archive of a JSON file).
    """
    if isinstance(source, (str, os.PathLike)):
        progress.stage(logger, "read")
        raw, label = read_bytes(source, what)
        return parse(raw, decoder, label)
    return source
