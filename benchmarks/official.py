"""Runs *your* copy of the official OVIS / YouTube-VIS evaluator on current NumPy and Python.

Nothing of the official code is part of this repository, and none of it may be committed: fetch it
yourself and point ``--official`` at it.

* OVIS: the OVIS authors' fork of the COCO API, https://github.com/qjy981010/cocoapi
  (``PythonAPI/pycocotools/ovis.py`` and ``oviseval.py``; the fork also carries the two YouTube-VIS
  files below, unchanged).
* YouTube-VIS: https://github.com/youtubevos/cocoapi (``PythonAPI/pycocotools/ytvos.py`` and
  ``ytvoseval.py``).

``DIR`` may hold the ``.py`` files directly, or be a clone of either repository (the files are
looked up in ``DIR``, ``DIR/pycocotools`` and ``DIR/PythonAPI/pycocotools``). Only those four files
are used; ``mask`` is the installed ``pycocotools.mask`` (the forks' ``mask.py`` is upstream's).

Usage::

    python benchmarks/official.py --official DIR --gt GT.json --results R.json \\
        [--json OUT.json] [--npz OUT.npz] [--quiet] [--aliases numpy|proxy]

It does what the official evaluation scripts do: ``OVIS(gt)``, ``gt.loadRes(results)``,
``OVISeval(gt, dt, 'segm')``, ``evaluate()``, ``accumulate()``, ``summarize()`` and prints the 18
numbers. A ground truth without ``occlusion`` labels is evaluated with ``YTVOS`` / ``YTVOSeval``
instead (12 numbers), since the OVIS code raises a KeyError on it. ``--json`` writes
``{"format": "ovis" | "ytvis", "stats": [...], "precision_shape": [...]}``; ``--npz`` writes the
official ``eval['precision']`` and ``eval['recall']`` arrays (OVIS: [T,R,K,A,O,M] and [T,K,A,O,M];
YouTube-VIS: [T,R,K,A,M] and [T,K,A,M]).

The official code is loaded unmodified, as modules of a stand-in package
(``_official_vis_<n>``) whose ``mask`` submodule is ``pycocotools.mask`` (the files use
``from . import mask``). Runtime shims, none of which touches the official files:

* ``np.float`` (and ``np.int``, ``np.bool``, ``np.object``, ``np.complex``, ``np.str``): removed in
  NumPy 1.24; ``accumulate()`` calls ``.astype(dtype=np.float)``. The aliases are the builtin
  types, which is what they were.
* ``np.linspace(..., num=<float>)``: ``ytvoseval.Params`` passes ``np.round(...) + 1``, a float, as
  ``num``; NumPy >= 1.18 raises TypeError. The shim's ``linspace`` converts an integral float
  ``num`` to ``int`` first, as NumPy < 1.18 did.

  Where these two shims live is the ``aliases`` option (``--aliases``):

  - ``numpy`` (the command line's default; the fair, faster baseline, see
    ``benchmarks/NOTES.md``): set on the ``numpy`` module itself, before the official modules are
    imported, as a user of an old NumPy would have them. Only for a process of the official's
    own: it changes NumPy for everything else in that process.
  - ``proxy`` (the default of :func:`run_official` / :func:`load_official`, for use inside another
    process such as ``tools/official_golden.py``): each official module's global ``np`` is
    replaced by a proxy module that adds them, NumPy itself untouched.
* ``unicode``: ``loadRes`` evaluates ``type(resFile) == unicode`` (a Python 2 name) whenever it is
  not given a ``str`` path; ``unicode = str`` is set in the ``ovis`` / ``ytvos`` module globals
  (only reached when results are passed as a list, see :func:`run_official`).
* ``matplotlib``: ``ovis.py`` / ``ytvos.py`` import ``pyplot``, ``PatchCollection`` and
  ``Polygon`` at module level and never use them. If matplotlib is not installed, empty stand-in
  modules are put in ``sys.modules`` while the official modules are imported, and removed after.

The official code is known to crash on some inputs (README, "Where `ovis_jax` differs"): a ground
truth whose annotations have ``occlusion`` labels only in part (KeyError), a track whose occlusion
labels are all null (ZeroDivisionError), an empty result list (IndexError in ``loadRes``). These are
not worked around: the runner stops with a message that names the known cause. """

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib
import io
import json
import sys
import time
import types
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "ALIAS_MODES",
    "OfficialResult",
    "detect_format",
    "find_official",
    "install_numpy_aliases",
    "load_official",
    "run_official",
]

_PACKAGE = "_official_vis"
_MODULES = {"ovis": ("ovis", "oviseval"), "ytvis": ("ytvos", "ytvoseval")}
_SUBDIRS = (".", "pycocotools", "PythonAPI/pycocotools")
_REMOVED_ALIASES = {
    "float": float,
    "int": int,
    "bool": bool,
    "object": object,
    "complex": complex,
    "str": str,
}
ALIAS_MODES = ("numpy", "proxy")  # where the shims live; see the module docstring


class OfficialError(RuntimeError):
    """The official evaluator could not be found, loaded or run."""


class OfficialResult(dict):
    """``{"format", "stats", "precision", "recall", "seconds"}`` of one official run."""


# --------------------------------------------------------------------------------------------
# Locating and loading the official code
# --------------------------------------------------------------------------------------------


def find_official(directory: str | Path, fmt: str) -> Path:
    """The folder under ``directory`` that holds the official files of format ``fmt``."""
    base = Path(directory).expanduser().resolve()
    names = _MODULES[fmt]
    for sub in _SUBDIRS:
        folder = (base / sub).resolve()
        if all((folder / f"{n}.py").is_file() for n in names):
            return folder
    raise OfficialError(
        f"no {' + '.join(n + '.py' for n in names)} found in {base} (looked in "
        f"{', '.join(_SUBDIRS)}); get them from "
        + (
            "https://github.com/qjy981010/cocoapi"
            if fmt == "ovis"
            else "https://github.com/youtubevos/cocoapi"
        )
        + " (PythonAPI/pycocotools)"
    )


def _integral_num(orig_linspace):
    """``linspace`` that accepts an integral float ``num``, as NumPy < 1.18 did."""
    if getattr(orig_linspace, "_official_shim", False):
        return orig_linspace

    def linspace(start, stop, num=50, *args, **kwargs):
        if isinstance(num, (float, np.floating)) and float(num).is_integer():
            num = int(num)
        return orig_linspace(start, stop, num, *args, **kwargs)

    linspace._official_shim = True
    return linspace


def _numpy_proxy() -> types.ModuleType:
    """NumPy, plus the aliases the official code needs (see the module docstring)."""
    proxy = types.ModuleType("numpy")
    proxy.__dict__.update(np.__dict__)
    for name, value in _REMOVED_ALIASES.items():
        if name not in np.__dict__:
            setattr(proxy, name, value)
    proxy.linspace = _integral_num(np.linspace)
    return proxy


def install_numpy_aliases() -> None:
    """Sets the aliases and the ``linspace`` shim on the ``numpy`` module itself.

    For a process of the official evaluator's own (``--aliases numpy``): every module of the
    process then sees them, as under an old NumPy.
    """
    for name, value in _REMOVED_ALIASES.items():
        if name not in np.__dict__:
            setattr(np, name, value)
    np.linspace = _integral_num(np.linspace)


@contextlib.contextmanager
def _matplotlib_stub():
    """Stand-in matplotlib modules while importing, if the real one is missing."""
    try:
        import matplotlib.collections
        import matplotlib.patches
        import matplotlib.pyplot  # noqa: F401

        yield
        return
    except ImportError:
        pass
    names = ("matplotlib", "matplotlib.pyplot", "matplotlib.collections", "matplotlib.patches")
    saved = {n: sys.modules.get(n) for n in names}
    stubs = {n: types.ModuleType(n) for n in names}
    stubs["matplotlib.collections"].PatchCollection = None
    stubs["matplotlib.patches"].Polygon = None
    stubs["matplotlib"].pyplot = stubs["matplotlib.pyplot"]
    sys.modules.update(stubs)
    try:
        yield
    finally:
        for n, mod in saved.items():
            if mod is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = mod


_LOADED: dict[tuple[str, str, str], tuple[types.ModuleType, types.ModuleType]] = {}
_PACKAGES: dict[str, str] = {}


def load_official(
    directory: str | Path, fmt: str, *, aliases: str = "proxy"
) -> tuple[types.ModuleType, types.ModuleType]:
    """Imports the official API and evaluation modules (``ovis``/``oviseval`` or
    ``ytvos``/``ytvoseval``) from ``directory``, with the shims applied (``aliases``: ``"proxy"``
    or ``"numpy"``, see the module docstring)."""
    if aliases not in ALIAS_MODES:
        raise ValueError(f"aliases must be one of {ALIAS_MODES}, not {aliases!r}")
    folder = find_official(directory, fmt)
    key = (str(folder), fmt, aliases)
    if key in _LOADED:
        return _LOADED[key]
    if aliases == "numpy":
        install_numpy_aliases()  # before the official modules import
    from pycocotools import mask as mask_utils

    # One stand-in package per folder and alias mode, so that copies load side by side.
    pkg_name = _PACKAGES.setdefault(f"{folder}\0{aliases}", f"{_PACKAGE}_{len(_PACKAGES)}")
    if pkg_name not in sys.modules:
        pkg = types.ModuleType(pkg_name)
        pkg.__path__ = [str(folder)]
        pkg.mask = mask_utils
        sys.modules[pkg_name] = pkg
        sys.modules[f"{pkg_name}.mask"] = mask_utils
    api_name, eval_name = _MODULES[fmt]
    with _matplotlib_stub():
        try:
            api = importlib.import_module(f"{pkg_name}.{api_name}")
            ev = importlib.import_module(f"{pkg_name}.{eval_name}")
        except Exception as e:
            raise OfficialError(f"could not import the official code from {folder}: {e!r}") from e
    if aliases == "proxy":
        proxy = _numpy_proxy()
        api.np = proxy
        ev.np = proxy
    api.unicode = str
    _LOADED[key] = (api, ev)
    return api, ev


# --------------------------------------------------------------------------------------------
# Running it
# --------------------------------------------------------------------------------------------


def detect_format(gt: dict) -> str:
    """``"ovis"`` if any ground-truth annotation has ``occlusion`` labels, else ``"ytvis"``."""
    anns = gt.get("annotations") or []
    return "ovis" if any("occlusion" in a for a in anns) else "ytvis"


def _known_crash(gt: dict, results: Any, fmt: str, exc: BaseException) -> str:
    """Names the known official crash case that ``exc`` most likely is, or ''."""
    anns = gt.get("annotations") or []
    if isinstance(results, list) and not results and isinstance(exc, IndexError):
        return "the result list is empty (official loadRes reads anns[0])"
    if fmt == "ovis" and isinstance(exc, KeyError):
        missing = [i for i, a in enumerate(anns) if "occlusion" not in a]
        if missing:
            return (
                f"{len(missing)} annotation(s) have no 'occlusion' key (first: annotations"
                f"[{missing[0]}]) while others have one: the official OVIS code needs it on all"
            )
    if fmt == "ovis" and isinstance(exc, ZeroDivisionError):
        null = [
            i
            for i, a in enumerate(anns)
            if "occlusion" in a and all(o is None for o in a["occlusion"])
        ]
        if null:
            return (
                f"{len(null)} ground-truth track(s) have only null occlusion labels (first: "
                f"annotations[{null[0]}], id {anns[null[0]].get('id')}): the official OVIS code "
                "divides by zero"
            )
    return ""


def run_official(
    official_dir: str | Path,
    gt: str | Path | dict,
    results: str | Path | list,
    *,
    fmt: str | None = None,
    quiet: bool = False,
    aliases: str = "proxy",
) -> OfficialResult:
    """Runs the official evaluator as the official scripts do.

    Args:
        official_dir: where the official ``.py`` files are (see the module docstring).
        gt: the ground-truth JSON path, or its parsed dict (deep-copied: the official code
            modifies what it is given).
        results: the results JSON path, or its parsed list (deep-copied).
        fmt: ``"ovis"`` or ``"ytvis"``; by default ``"ovis"`` when the ground truth has
            ``occlusion`` labels.
        quiet: swallow what the official code prints.
        aliases: ``"proxy"`` (NumPy untouched) or ``"numpy"`` (the aliases set on NumPy itself,
            for a process of the official's own); see the module docstring.

    Returns:
        An :class:`OfficialResult`: ``format``, ``stats`` (list of 18 or 12 floats),
        ``precision`` and ``recall`` (the official arrays), ``seconds`` (evaluation time, not
        counting the import).

    Raises:
        OfficialError: the code is not found, fails to import, or fails on the input (with the
            known cause named when it is one of the documented crash cases).
    """
    gt_path = None if isinstance(gt, dict) else Path(gt)
    res_path = None if isinstance(results, list) else Path(results)
    # Only parsed here when the format must be detected: a timed run passes ``fmt`` so that the
    # official process does not pay for an extra parse of the ground truth.
    gt_dict = gt if gt_path is None else None
    if fmt is None:
        gt_dict = gt_dict if gt_dict is not None else json.loads(gt_path.read_text())
        fmt = detect_format(gt_dict)
    api_mod, eval_mod = load_official(official_dir, fmt, aliases=aliases)
    api_cls, eval_cls = (
        (api_mod.OVIS, eval_mod.OVISeval) if fmt == "ovis" else (api_mod.YTVOS, eval_mod.YTVOSeval)
    )
    sink = io.StringIO() if quiet else None
    t0 = time.perf_counter()
    try:
        with contextlib.redirect_stdout(sink) if quiet else contextlib.nullcontext():
            if gt_path is not None:
                coco_gt = api_cls(str(gt_path))
            else:  # what __init__ does after json.load
                coco_gt = api_cls()
                coco_gt.dataset = copy.deepcopy(gt_dict)
                coco_gt.createIndex()
            coco_dt = coco_gt.loadRes(
                str(res_path) if res_path is not None else copy.deepcopy(results)
            )
            e = eval_cls(coco_gt, coco_dt, "segm")
            e.evaluate()
            e.accumulate()
            e.summarize()
    except Exception as exc:
        res_obj = json.loads(res_path.read_text()) if res_path is not None else results
        gt_obj = gt_dict if gt_dict is not None else json.loads(gt_path.read_text())
        known = _known_crash(gt_obj, res_obj, fmt, exc)
        what = f"known official crash case: {known}" if known else "not a known crash case"
        raise OfficialError(
            f"the official {fmt.upper()} evaluator failed with {type(exc).__name__}: {exc} ({what})"
        ) from exc
    seconds = time.perf_counter() - t0
    return OfficialResult(
        format=fmt,
        stats=[float(s) for s in e.stats],
        precision=np.asarray(e.eval["precision"], dtype=np.float64),
        recall=np.asarray(e.eval["recall"], dtype=np.float64),
        seconds=seconds,
    )


def main(argv: list[str] | None = None) -> int:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(
        description="Run the official OVIS / YouTube-VIS evaluator (your copy) on current NumPy."
    )
    parser.add_argument("--official", required=True, help="folder with the official .py files")
    parser.add_argument("--gt", required=True, type=Path, help="ground-truth JSON")
    parser.add_argument("--results", required=True, type=Path, help="results JSON")
    parser.add_argument("--format", choices=("ovis", "ytvis"), help="default: from the gt")
    parser.add_argument("--json", type=Path, help="write format, stats, precision_shape here")
    parser.add_argument("--npz", type=Path, help="write the precision and recall arrays here")
    parser.add_argument("--quiet", action="store_true", help="hide the official code's output")
    parser.add_argument(
        "--aliases",
        choices=ALIAS_MODES,
        default="numpy",
        help="where np.float & co. and the linspace shim live: on NumPy itself (default, this "
        "process only) or in a proxy module per official module",
    )
    args = parser.parse_args(argv)
    try:
        out = run_official(
            args.official,
            args.gt,
            args.results,
            fmt=args.format,
            quiet=args.quiet,
            aliases=args.aliases,
        )
    except OfficialError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"official {out['format']} evaluation took {out['seconds']:.3f} s; stats:")
    for s in out["stats"]:
        print(repr(s))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "format": out["format"],
                    "stats": out["stats"],
                    "precision_shape": list(out["precision"].shape),
                },
                indent=1,
            )
            + "\n"
        )
    if args.npz:
        np.savez_compressed(args.npz, precision=out["precision"], recall=out["recall"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
