"""Reading an input file: plain JSON, a ``.json.gz`` or a zip archive holding it, and the JSON
decoders (the msgspec fast path with typed structs, the general untyped objects, the standard
library as the last resort)."""

from __future__ import annotations

import functools
import gc
import io
import json
import logging
import os
import stat
import zipfile
import zlib
from typing import Any

import msgspec

from ovis_jax._src import progress
from ovis_jax._src.errors import FormatError
from ovis_jax._src.io.segments import FastFile
from ovis_jax._src.io.validate import show

__all__ = [
    "DEFAULT_MAX_INPUT_BYTES",
    "MAX_EXPANSION",
    "MAX_INPUT_BYTES_ENV",
    "RATIO_FREE_BYTES",
    "TYPED_GT",
    "TYPED_RESULTS",
    "UNTYPED",
    "TypedGroundTruth",
    "TypedTrack",
    "gc_paused",
    "max_input_bytes",
    "parse",
    "parse_untyped",
    "read_bytes",
    "read_source",
    "zip_layout",
    "zip_problems",
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


def parse(
    raw: bytes | bytearray, decoder: msgspec.json.Decoder, label: str, *, consume: bool = False
) -> Any:
    """Parses JSON bytes: the fast path's typed structs when the file has the expected shape
    and every segmentation list is in the common form (see :mod:`ovis_jax._src.io.segjson`), else
    the general untyped objects; the standard library's parser is the last resort (it reads
    numbers that overflow float64 as infinities, which validation then names).

    ``consume``: ``raw`` (a ``bytearray``) is given up: the fast path writes the masks'
    characters into it instead of into a copy (its other bytes are lost), so that a file's
    strings are not held twice."""
    from ovis_jax._src.io import segjson

    try:
        typed = decoder.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        typed = None
    if typed is not None:
        tracks = typed.annotations if isinstance(typed, TypedGroundTruth) else typed
        slices = [t.segmentations for t in tracks]
        segments = segjson.read_segmentations(raw, slices, in_place=consume)
        if segments is not None:
            fast = FastFile(typed, tracks, segments)
            for t in tracks:  # (its slices may now hold other bytes)
                t.segmentations = None
            return fast
        del typed, tracks, slices
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


#: The default cap on the bytes a single input may hold once read (decompressed): 16 GiB.
#: Valid inputs cost about twice their size in memory once parsed, so a larger input would not
#: fit on most machines anyway; raise it with ``OVIS_JAX_MAX_INPUT_BYTES`` or ``max_bytes=``.
DEFAULT_MAX_INPUT_BYTES = 16 * 2**30
#: The environment variable that sets the cap (bytes, a plain integer).
MAX_INPUT_BYTES_ENV = "OVIS_JAX_MAX_INPUT_BYTES"
#: With the default cap, compressed data may also expand at most this many times (counted on
#: the compressed bytes read so far), beyond the first :data:`RATIO_FREE_BYTES`. JSON of RLE
#: strings deflates 3-10x (null-heavy or indented files a few times more); a bomb of
#: whitespace deflates about 1000x and is refused after :data:`RATIO_FREE_BYTES`.
MAX_EXPANSION = 100
RATIO_FREE_BYTES = 256 * 2**20
_CHUNK = 1 << 20
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_ZIP_METHODS = {9: "Deflate64", 99: "AES encryption"}


def max_input_bytes(max_bytes: int | None = None) -> tuple[int, bool]:
    """The cap on an input's (decompressed) size and whether the expansion guard applies.

    Args:
        max_bytes: an explicit cap; None reads ``OVIS_JAX_MAX_INPUT_BYTES``, else the default.

    Returns:
        ``(cap, guard)``: guard is True for the default cap only (an explicit cap is the one
        limit).

    Raises:
        ValueError: the cap, or the environment variable, is not a positive integer.
    """
    if max_bytes is None:
        env = os.environ.get(MAX_INPUT_BYTES_ENV, "").strip()
        if not env:
            return DEFAULT_MAX_INPUT_BYTES, True
        if not env.isdigit() or int(env) <= 0:
            raise ValueError(f"{MAX_INPUT_BYTES_ENV}={env!r}: expected a positive integer (bytes)")
        return int(env), False
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
        raise ValueError(f"max_bytes: expected a positive integer, got {max_bytes!r}")
    return max_bytes, False


def _too_large(label: str, cap: int, *, expansion: bool = False) -> FormatError:
    if expansion:
        why = (
            f"its data expands more than {MAX_EXPANSION} times past the first "
            f"{RATIO_FREE_BYTES >> 20} MiB (a compression bomb?)"
        )
        fix = "set a cap explicitly"
    else:
        why, fix = f"it holds more than the cap of {cap} bytes", "raise the cap"
    return FormatError(
        f"{label}: refused, {why}; if the file is genuine, {fix} with "
        f"{MAX_INPUT_BYTES_ENV}=BYTES (or max_bytes= in Python)"
    )


def read_bytes(
    path: str | os.PathLike,
    what: str,
    *,
    max_bytes: int | None = None,
    duplicates: str = "error",
    writable: bool = False,
) -> tuple[bytes | bytearray, str]:
    """A JSON file's bytes, from the file itself, a ``.gz`` of it, or a zip archive holding it
    (its only ``.json`` member, or ``results.json``), and the label naming it in messages.

    Compressed data is decompressed as a stream and refused once it exceeds the cap (see
    :func:`max_input_bytes`; by default also once it expands more than :data:`MAX_EXPANSION`
    times), so a compression bomb costs little time and memory. Devices are refused; pipes are
    read up to the cap.

    Args:
        path: the file.
        what: what it is, for messages (``"results"``, ``"ground truth"``).
        max_bytes: the cap on the bytes read (decompressed); None: the default or
            ``OVIS_JAX_MAX_INPUT_BYTES``.
        duplicates: for a zip with two members of the chosen name, ``"error"`` or ``"last"``
            (the one Python's ``zipfile`` reads).
        writable: a plain regular file comes as a ``bytearray`` (read in place), a zip member
            or a pipe as ``bytes``. A ``.gz`` always comes as a ``bytearray`` of its own.

    Raises:
        OSError: the file cannot be read (``FileNotFoundError`` when it does not exist).
        FormatError: a corrupt, encrypted or unsupported archive, a zip without exactly one
            JSON member to read, or an input over the cap.
    """
    cap, guard = max_input_bytes(max_bytes)
    label = f"{what} file {os.fspath(path)!r}"
    with open(path, "rb") as f:
        mode = os.fstat(f.fileno()).st_mode
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISSOCK(mode):
            raise FormatError(f"{label}: not a regular file (a device): expected a JSON file")
        head = f.read(4)
        if head.startswith(b"\x1f\x8b"):
            return _gunzip(f, head, label, cap, guard), label
        if stat.S_ISREG(mode) and head in _ZIP_MAGIC:
            f.seek(0)
            return _zip_member(f, label, cap, guard, duplicates)
        if stat.S_ISREG(mode) and os.fstat(f.fileno()).st_size > cap:
            raise _too_large(label, cap)
        if stat.S_ISREG(mode) and writable:
            return _read_into(f, head, label, cap), label
        if stat.S_ISREG(mode):  # from the start again: head + rest would be two copies at once
            f.seek(0)
            return _read_capped(f, cap, label, cap), label
        return head + _read_capped(f, cap - len(head), label, cap), label


def _read_into(f: io.BufferedReader, head: bytes, label: str, cap: int) -> bytearray:
    """The whole regular file ``f`` (``head`` already read) as one ``bytearray``, read in
    place (one buffer of the file's size), refused past the cap."""
    size = os.fstat(f.fileno()).st_size
    buf = bytearray(size + 1)  # one more byte: a file that grew since is noticed
    buf[: len(head)] = head
    n = len(head)
    with memoryview(buf) as view:
        while n < len(buf) and (k := f.readinto(view[n:])):
            n += k
    del buf[n:]
    if n > size:  # it grew: the rest as it comes
        buf += _read_capped(f, cap - n, label, cap)
    return buf


def _read_capped(f: io.BufferedReader, left: int, label: str, cap: int) -> bytes:
    """The rest of ``f``, refused when it holds more than ``left`` bytes."""
    data = f.read(left + 1) if left >= 0 else b"x"
    if len(data) > left:
        raise _too_large(label, cap)
    return data


def _gunzip(f: io.BufferedReader, head: bytes, label: str, cap: int, guard: bool) -> bytearray:
    """Decompresses the gzip stream of ``f`` (all its members) within the cap, into a
    ``bytearray`` of our own (read in place, like a plain file)."""
    out = bytearray()
    d = zlib.decompressobj(31)
    pending, consumed, fed = head, 0, False
    try:
        while chunk := pending or f.read(_CHUNK):
            pending = b""
            consumed += len(chunk)
            while chunk:
                fed = True
                out += d.decompress(chunk, _CHUNK)
                chunk = d.unconsumed_tail
                if d.eof:  # the next member, if any (gzip allows several; zeros may pad)
                    chunk = d.unused_data.lstrip(b"\x00")  # holds the unconsumed tail too
                    d, fed = zlib.decompressobj(31), False
                _check_size(len(out), consumed, label, cap, guard)
        if fed:
            raise EOFError("compressed file ended before the end-of-stream marker")
    except (OSError, EOFError, zlib.error) as e:
        raise FormatError(f"{label}: corrupt gzip data ({e})") from None
    return out


def _check_size(size: int, consumed: int, label: str, cap: int, guard: bool) -> None:
    if size > cap:
        raise _too_large(label, cap)
    if guard and size > max(RATIO_FREE_BYTES, MAX_EXPANSION * consumed):
        raise _too_large(label, cap, expansion=True)


def zip_layout(names: list[str]) -> tuple[str | None, list[str]]:
    """The member a zip's results are read from, and what the servers would object to.

    Args:
        names: the archive's member names, in order (folders end with ``/``).

    Returns:
        ``(member, problems)``: the member (``results.json`` at the root, else the only
        ``.json`` member; None when there is no single one) and one line per layout the
        evaluation servers reject (``results.json`` inside a folder, two members of one name).
    """
    files = [n for n in names if not n.endswith("/")]
    jsons = [n for n in files if n.lower().endswith(".json")]
    member = (
        "results.json" if "results.json" in files else (jsons[0] if len(set(jsons)) == 1 else None)
    )
    problems = []
    if "results.json" not in files and member is not None and "/" in member:
        problems.append(
            f"the archive holds {member!r} inside a folder: the server reads results.json at "
            "the root of the archive (python -m ovis_jax.pack writes that layout)"
        )
    elif member is not None and member != "results.json" and "/" not in member:
        problems.append(
            f"the archive's JSON member is {member!r}: the server reads results.json "
            "(python -m ovis_jax.pack writes that layout)"
        )
    if member is not None and files.count(member) > 1:
        problems.append(
            f"the archive has {files.count(member)} members named {member!r}: which one the "
            "server reads is undefined (python -m ovis_jax.pack writes one)"
        )
    return member, problems


def _zip_member(
    f: io.BufferedReader, label: str, cap: int, guard: bool, duplicates: str
) -> tuple[bytes, str]:
    try:
        with zipfile.ZipFile(f) as z:
            infos = z.infolist()
            name, problems = zip_layout([i.filename for i in infos])
            if name is None:
                jsons = [i.filename for i in infos if i.filename.lower().endswith(".json")]
                raise FormatError(
                    f"{label} is a zip archive with {len(jsons)} JSON members "
                    f"({show(z.namelist())}): expected one, e.g. results.json at its root"
                )
            if duplicates == "error" and any("members named" in p for p in problems):
                raise FormatError(f"{label}: {problems[-1]}")
            info = [i for i in infos if i.filename == name][-1]
            where = f"{label} (member {name!r})"
            _check_member(info, where, cap, guard)
            with z.open(info) as m:
                data = m.read(info.file_size)
            return data, where
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as e:
        raise FormatError(f"{label}: corrupt zip archive ({e})") from None


def _check_member(info: zipfile.ZipInfo, where: str, cap: int, guard: bool) -> None:
    """Refuses an encrypted member, a compression method Python cannot read, and a member
    over the cap (its declared size bounds what ``zipfile`` decompresses)."""
    method = _ZIP_METHODS.get(info.compress_type)
    if info.compress_type == 99 or info.flag_bits & 0x1:
        raise FormatError(
            f"{where} is encrypted (password-protected{', AES' if method else ''}): the "
            "evaluation server cannot read it either; zip it without a password "
            "(python -m ovis_jax.pack)"
        )
    if info.compress_type not in (
        zipfile.ZIP_STORED,
        zipfile.ZIP_DEFLATED,
        zipfile.ZIP_BZIP2,
        zipfile.ZIP_LZMA,
    ):
        raise FormatError(
            f"{where} uses the compression method {method or info.compress_type} "
            "(not readable here nor by Python's zipfile on the server): recompress it "
            "with Deflate (python -m ovis_jax.pack, or zip -Z deflate)"
        )
    _check_size(info.file_size, info.compress_size, where, cap, guard)


def zip_problems(path: str | os.PathLike) -> list[str]:
    """What the evaluation servers would object to in the layout of a zip (see
    :func:`zip_layout`); ``[]`` for a file that is not a zip archive."""
    with open(path, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode) or f.read(4) not in _ZIP_MAGIC:
            return []
        f.seek(0)
        try:
            with zipfile.ZipFile(f) as z:
                return zip_layout(z.namelist())[1]
        except zipfile.BadZipFile:
            return []


def read_source(
    source: Any, what: str, decoder: msgspec.json.Decoder, *, max_bytes: int | None = None
) -> Any:
    """A path's parsed contents (see :func:`read_bytes` and :func:`parse`), or an
    already-parsed object as is.

    Raises:
        OSError: the file cannot be read (``FileNotFoundError`` when it does not exist).
        FormatError: it is not JSON (nor a gzip or zip archive of a JSON file).
    """
    if isinstance(source, (str, os.PathLike)):
        progress.stage(logger, "read")
        raw, label = read_bytes(source, what, max_bytes=max_bytes, writable=True)
        return parse(raw, decoder, label, consume=isinstance(raw, bytearray))
    return source
