#!/usr/bin/env python
"""Peak RSS of the whole command line on large results files (memory per GB of results JSON).

    python benchmarks/memory.py --sizes 1,2,4 --runs 2 --large-vocab --out /tmp/memory.json
    python benchmarks/memory.py --split 2          # where the memory of the 2 GB case goes

Data: a block of OVIS-like videos with 100 predictions a video (the ``crowded`` scenario's
parameters, :mod:`scenarios`) is generated once with :func:`ovis_jax.testing.synthetic.ovis_like`;
a results file of about N GB is that block repeated under new video ids (whole videos, until
the file reaches N GB), with a ground truth of the same videos. Everything is written into a
temporary folder (``--tmp``) and deleted at the end, each size's files right after its runs.

Each run is ``python -m ovis_jax.eval --gt GT --results R -q --backend cpu`` under the small
launcher of :mod:`measure` (``wait4``'s ``ru_maxrss`` of the command alone, and its wall
clock), with a numba cache filled by a warm-up run beforehand (no compilation in the numbers).
Sizes run in increasing order; a watchdog kills a run, and stops the sizes, once the machine's
available memory falls below ``--min-free-gb`` (6 GB by default).

``--split N``: one process loads and evaluates the N GB files stage by stage (reading the
bytes, msgspec decoding, the segmentations walk, validation and the mask table, the rest of
loading, evaluation) while a thread samples its RSS every 5 ms; prints the RSS at the end of
each stage and the peak during it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import inspect
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import scenarios  # noqa: E402  (benchmarks/ is not a package)

GB = 10**9
MB = 10**6
MIB = 2**20

#: The block repeated to reach a size: ``crowded``'s videos (100 predictions a video).
BLOCK = scenarios.Scenario(
    "memory-block",
    "OVIS-like videos at full resolution, 100 predictions a video",
    num_videos=40,
    num_categories=25,
    frames=70,
    sizes=scenarios.FULL_RES,
    predictions_per_video=100,
    occlusion=True,
)


# --------------------------------------------------------------------------------------------
# Data


def _with_ids(obj: dict, **ids: int) -> str:
    """A JSON template of ``obj`` whose ``ids`` keys come first as ``%d`` placeholders."""
    rest = json.dumps({k: v for k, v in obj.items() if k not in ids}, separators=(",", ":"))
    rest = rest.replace("%", "%%")
    head = ",".join(f'"{k}":%d' for k in ids)
    return "{" + head + ("," + rest[1:] if rest != "{}" else "}")


def block_templates(sc: scenarios.Scenario) -> tuple[list[dict], list, list, list]:
    """The block's (videos, categories, per video: annotation templates, result templates)."""
    gt, results = scenarios._generate(sc)
    anns: list[list[str]] = [[] for _ in gt["videos"]]
    res: list[list[str]] = [[] for _ in gt["videos"]]
    for a in gt["annotations"]:
        anns[a["video_id"] - 1].append(_with_ids(a, id=0, video_id=0))
    for r in results:
        res[r["video_id"] - 1].append(_with_ids(r, video_id=0))
    return gt["videos"], gt["categories"], anns, res


def write_scaled(block: tuple, target: int, folder: Path) -> dict[str, Any]:
    """Writes ``gt.json`` and ``results.json`` in ``folder``: whole videos of the block, in
    turn under new ids, until the results reach ``target`` bytes. Returns their metadata."""
    videos, categories, anns, res = block
    gt_path, res_path = folder / "gt.json", folder / "results.json"
    n_res = n_ann = written = 0
    out_videos = []
    with res_path.open("w", encoding="utf-8") as f:
        f.write("[")
        while written < target:
            v = len(out_videos)
            src = videos[v % len(videos)]
            out_videos.append({**src, "id": v + 1})
            for t in res[v % len(videos)]:
                written += f.write(("," if n_res else "") + t % (v + 1))
                n_res += 1
        f.write("]")
    with gt_path.open("w", encoding="utf-8") as f:
        f.write('{"videos":' + json.dumps(out_videos, separators=(",", ":")))
        f.write(',"categories":' + json.dumps(categories, separators=(",", ":")))
        f.write(',"annotations":[')
        for v in range(len(out_videos)):
            for t in anns[v % len(videos)]:
                f.write(("," if n_ann else "") + t % (n_ann + 1, v + 1))
                n_ann += 1
        f.write("]}")
    return {
        "gt_path": str(gt_path),
        "results_path": str(res_path),
        "gt_bytes": gt_path.stat().st_size,
        "results_bytes": res_path.stat().st_size,
        "videos": len(out_videos),
        "results": n_res,
        "gt_tracks": n_ann,
    }


# --------------------------------------------------------------------------------------------
# Measuring


def available_bytes() -> int:
    """The machine's ``MemAvailable``."""
    with open("/proc/meminfo", encoding="ascii") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def run_watched(cmd: list[str], env: dict[str, str], floor: int) -> dict[str, Any]:
    """``cmd`` under measure.py's launcher (its own peak RSS and wall clock), killed with its
    process group if the available memory falls below ``floor`` bytes."""
    with tempfile.TemporaryDirectory(prefix="ovis-mem-run-") as tmp:
        out, err = os.path.join(tmp, "m.json"), os.path.join(tmp, "stderr")
        launcher = [sys.executable, str(HERE / "measure.py"), "--out", out, "--stderr", err]
        proc = subprocess.Popen(
            [*launcher, "--", *cmd], env={**os.environ, **env}, cwd=tmp, start_new_session=True
        )
        low = None
        while proc.poll() is None:
            free = available_bytes()
            low = free if low is None else min(low, free)
            if free < floor:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return {"error": f"killed: available memory {free / GB:.1f} GB < floor"}
            time.sleep(0.05)
        rec = json.loads(Path(out).read_text()) if os.path.exists(out) else {"returncode": None}
        if rec.get("returncode") != 0:
            tail = Path(err).read_text(errors="replace")[-2000:] if os.path.exists(err) else "?"
            rec["error"] = tail or f"exit status {rec.get('returncode')}"
        rec["min_available_gb"] = (low or 0) / GB
        return rec


def eval_command(meta: dict[str, Any]) -> list[str]:
    return [
        sys.executable, "-m", "ovis_jax.eval", "--gt", meta["gt_path"],
        "--results", meta["results_path"], "-q", "--backend", "cpu",
    ]  # fmt: skip


def measure_case(name: str, meta: dict, env: dict, runs: int, floor: int) -> dict[str, Any]:
    """``runs`` measured runs of the command line on one case; medians of RSS and wall."""
    recs = []
    for i in range(runs):
        if available_bytes() < floor:
            return {**meta, "name": name, "runs": recs, "stopped": "available memory < floor"}
        rec = run_watched(eval_command(meta), env, floor)
        print(f"[memory] {name} run {i + 1}: {json.dumps(rec)[:300]}", flush=True)
        recs.append(rec)
        if rec.get("error"):
            return {**meta, "name": name, "runs": recs, "stopped": rec["error"][:300]}
    rss = [r["peak_rss_mb"] * MIB / MB for r in recs]  # MiB (ru_maxrss / 1024) -> MB
    return {
        **meta,
        "name": name,
        "runs": recs,
        "rss_mb": statistics.median(rss),
        "wall_s": statistics.median(r["wall_s"] for r in recs),
        "rss_per_gb": statistics.median(rss) / (meta["results_bytes"] / GB) / 1000,
    }


# --------------------------------------------------------------------------------------------
# Stage split (in one process)


class Sampler:
    """Samples this process's RSS every few milliseconds, by stage."""

    def __init__(self, period: float = 0.005) -> None:
        self.period, self.stage, self.rows = period, "start", {}
        self.page = os.sysconf("SC_PAGE_SIZE")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def rss(self) -> int:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * self.page

    def _loop(self) -> None:
        while not self._stop.is_set():
            row = self.rows.get(self.stage)
            if row is not None:
                row["peak"] = max(row["peak"], self.rss())
            time.sleep(self.period)

    @staticmethod
    def reset_peak() -> bool:
        """Resets the kernel's peak RSS of this process (``VmHWM``); False where it cannot."""
        try:
            with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
                f.write("5")
            return True
        except OSError:
            return False

    @staticmethod
    def hwm() -> int:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        return 0

    @contextlib.contextmanager
    def __call__(self, stage: str):
        """Records one stage (stages do not nest): RSS before, after and the peak during
        (``VmHWM`` reset at the start, and the samples)."""
        exact = self.reset_peak()
        before = self.rss()
        self.rows[stage] = {"before": before, "peak": before}
        self.stage = stage
        try:
            yield
        finally:
            row = self.rows[stage]
            row["after"] = self.rss()
            row["peak"] = max(row["peak"], row["after"], self.hwm() if exact else 0)
            self.stage = "between"

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def split(gt_path: str, results_path: str) -> dict[str, Any]:
    """Loads and evaluates the files stage by stage (as ``load_results`` does), sampling RSS."""
    from ovis_jax import evaluate
    from ovis_jax._src.io import read, segjson
    from ovis_jax._src.io.segments import FastFile
    from ovis_jax._src.io.vis import load_ground_truth
    from ovis_jax._src.io.vis_results import load_results

    # The in-place reading of the version measured, if it has one (as read_source calls it).
    in_place = "writable" in inspect.signature(read.read_bytes).parameters
    with Sampler() as s:
        with s("import + ground truth"):
            gt = load_ground_truth(gt_path)
        with s("results: read bytes"):
            kw = {"writable": True} if in_place else {}
            raw, _ = read.read_bytes(results_path, "results", **kw)
        with s("results: msgspec decode"):
            typed = read.TYPED_RESULTS.decode(raw)
        with s("results: segmentations walk (chars, offsets)"):
            kw = {"in_place": True} if in_place else {}
            segs = segjson.read_segmentations(raw, [t.segmentations for t in typed], **kw)
        with s("results: FastFile items (dicts)"):
            fast = FastFile(typed, typed, segs)
            for t in typed:
                t.segmentations = None
            del raw, typed, segs
        with s("results: validate + mask table + rest"):
            results = load_results(fast, gt)
            del fast
        with s("evaluate (cpu)"):
            result = evaluate(gt, results, backend="cpu")
        stats = dict(result.stats)
    m = results.masks
    tables = {
        "results.masks." + k: getattr(m, k).nbytes
        for k in ("chars", "char_start", "frame_string", "frame_start", "string_area",
                  "string_first", "string_last", "string_values")
    }  # fmt: skip
    tables["results.masks.area (cached)"] = m.__dict__["area"].nbytes if "area" in m.__dict__ else 0
    tables["gt.masks (all arrays)"] = sum(
        getattr(gt.masks, k).nbytes
        for k in ("chars", "char_start", "frame_string", "frame_start", "string_area",
                  "string_first", "string_last", "string_values")
    )  # fmt: skip
    return {"stages": s.rows, "tables": tables, "ap": stats.get("AP"), "in_place": in_place}


def print_split(doc: dict[str, Any], results_bytes: int) -> None:
    print(f"results file: {results_bytes / MB:,.0f} MB")
    print("| stage | RSS before (MB) | peak during (MB) | RSS after (MB) | after - before (MB) |")
    print("|---|---:|---:|---:|---:|")
    for name, r in doc["stages"].items():
        b, p, a = r["before"] / MB, r["peak"] / MB, r["after"] / MB
        print(f"| {name} | {b:,.0f} | {p:,.0f} | {a:,.0f} | {a - b:+,.0f} |")
    print()
    for k, v in doc["tables"].items():
        print(f"- {k}: {v / MB:,.1f} MB")


# --------------------------------------------------------------------------------------------
# Command line


def _table(cases: list[dict]) -> str:
    lines = [
        "| case | videos | results | results JSON (MB) | ground truth (MB) | peak RSS (MB) "
        "| RSS per GB of results | wall (s) | runs |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in cases:
        if "rss_mb" not in c:
            lines.append(f"| {c['name']} | stopped: {c.get('stopped', '?')[:80]} |")
            continue
        rss = ", ".join(f"{r['peak_rss_mb'] * MIB / MB:,.0f}" for r in c["runs"])
        lines.append(
            f"| {c['name']} | {c['videos']:,} | {c['results']:,} | {c['results_bytes'] / MB:,.0f} "
            f"| {c['gt_bytes'] / MB:,.0f} | {c['rss_mb']:,.0f} ({rss}) | {c['rss_per_gb']:.2f} GB "
            f"| {c['wall_s']:.1f} | {len(c['runs'])} |"
        )
    return "\n".join(lines)


def _large_vocab(tmp: Path, env: dict, runs: int, floor: int) -> dict[str, Any]:
    (sc,) = scenarios.select("large-vocab", quick=False)
    meta = scenarios.ensure_data(sc, tmp / "large-vocab")
    return measure_case("large-vocab", meta, env, runs, floor)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1,2,4", help="results sizes in GB (increasing)")
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--large-vocab", action="store_true", help="also the large-vocab scenario")
    p.add_argument("--split", type=float, default=None, help="stage split of one size (GB)")
    p.add_argument("--min-free-gb", type=float, default=6.0)
    p.add_argument("--tmp", default=None, help="parent of the temporary folder")
    p.add_argument("--out", default=None, help="write the measurements as JSON")
    p.add_argument("--block-videos", type=int, default=BLOCK.num_videos)
    p.add_argument(
        "--snapshot", default=None, help="measure the package of this git revision (git archive)"
    )
    args = p.parse_args(argv)
    floor = int(args.min_free_gb * GB)
    tmp = Path(tempfile.mkdtemp(prefix="ovis-mem-", dir=args.tmp))
    env = {"NUMBA_CACHE_DIR": str(tmp / "numba")}
    doc: dict[str, Any] = {"uptime_before": _uptime(), "cases": [], "snapshot": args.snapshot}
    doc["revision"] = _revision(args.snapshot or "HEAD", clean=bool(args.snapshot))
    if args.snapshot:
        env["PYTHONPATH"] = _snapshot(args.snapshot, tmp / "snapshot")
    try:
        t = time.perf_counter()
        block = block_templates(dataclasses.replace(BLOCK, num_videos=args.block_videos))
        print(f"[memory] block of {args.block_videos} videos in {time.perf_counter() - t:.0f} s")
        warm = write_scaled(block, 1, _fresh(tmp / "warm"))
        run_watched(eval_command(warm), env, floor)  # fills the numba cache
        if args.split is not None:
            meta = write_scaled(block, int(args.split * GB), _fresh(tmp / "split"))
            del block
            code = "import json,sys,memory; print(json.dumps(memory.split(*sys.argv[1:3])))"
            out = subprocess.run(
                [sys.executable, "-c", code, meta["gt_path"], meta["results_path"]],
                env={**os.environ, **env, "PYTHONPATH": _path(str(HERE), env.get("PYTHONPATH"))},
                cwd=tmp,  # not the repository root: its package would shadow a --snapshot
                capture_output=True,
                text=True, check=True,
            )  # fmt: skip
            doc["split"] = json.loads(out.stdout.strip().splitlines()[-1])
            doc["split_meta"] = meta
            print_split(doc["split"], meta["results_bytes"])
        else:
            _sizes(args, block, tmp, env, floor, doc)
            del block
            if args.large_vocab:
                doc["cases"].append(_large_vocab(tmp, env, args.runs, floor))
            print(_table(doc["cases"]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    doc["uptime_after"] = _uptime()
    print(f"revision: {doc['revision']}")
    print(f"uptime before: {doc['uptime_before']}\nuptime after: {doc['uptime_after']}")
    if args.out:
        Path(args.out).write_text(json.dumps(doc, indent=1))
    return 0


def _sizes(args: argparse.Namespace, block: tuple, tmp: Path, env: dict, floor: int, doc):
    for gb in sorted(float(x) for x in args.sizes.split(",")):
        folder = _fresh(tmp / f"{gb:g}GB")
        meta = write_scaled(block, int(gb * GB), folder)
        case = measure_case(f"{gb:g} GB", meta, env, args.runs, floor)
        doc["cases"].append(case)
        shutil.rmtree(folder, ignore_errors=True)
        if "stopped" in case:
            print(f"[memory] stopping: {case['stopped']}", flush=True)
            break


def _snapshot(rev: str, folder: Path) -> str:
    """Extracts the package of git revision ``rev`` into ``folder``; returns ``folder``."""
    folder.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(HERE.parent), "archive", rev, "ovis_jax"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return str(folder)


def _revision(rev: str, *, clean: bool) -> str:
    """The short hash of ``rev``; with ``clean`` False, says whether the package has
    uncommitted changes (the working tree is measured)."""
    out = subprocess.run(
        ["git", "-C", str(HERE.parent), "rev-parse", "--short", rev], capture_output=True, text=True
    )
    dirty = _dirty() if clean is False else ""
    return out.stdout.strip() + dirty


def _dirty() -> str:
    out = subprocess.run(
        ["git", "-C", str(HERE.parent), "status", "--porcelain", "--", "ovis_jax"],
        capture_output=True, text=True,
    )  # fmt: skip
    return " (+ uncommitted changes)" if out.stdout.strip() else ""


def _path(*entries: str | None) -> str:
    return os.pathsep.join(e for e in entries if e)


def _fresh(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


if __name__ == "__main__":
    sys.exit(main())
