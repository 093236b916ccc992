#!/usr/bin/env python
"""Benchmark of the official OVIS / YouTube-VIS evaluator against ovis_jax's backends.

    python benchmarks/bench.py --official /tmp/official   # all scenarios -> benchmarks/RESULTS.md
    python benchmarks/bench.py --official DIR --rounds 5  # 5 interleaved rounds (default 3)
    python benchmarks/bench.py                            # the same, official columns "not run"
    python benchmarks/bench.py --quick                    # tiny data, < 60 s, prints the tables
    python benchmarks/bench.py --scenarios ovis-valid --backends cpu,jax --repeat 5
    python benchmarks/bench.py --profile ovis-valid       # cProfile of a warm evaluation
    python benchmarks/bench.py --prepare                  # only generate the cached data sets

Per scenario (``scenarios.py``), ``--rounds`` interleaved rounds of whole processes: the
official evaluator (``official.py``, with ``--official DIR``; once per ``--official-aliases``
mode), then for every backend (reference, cpu, jax) the command line twice (empty compilation
caches, then the filled ones); the next round starts with the official again. Medians and
min–max over the rounds are reported, and every ratio is official median / ours median. Then
the in-process timing of every backend (``worker.py``: first run, best of ``--repeat`` warm
runs, ``result.timings``). Wall clock and
peak RSS of whole processes come from ``measure.py``; ``checks.py`` compares every backend's
numbers with the official's (1e-12; exit status 1 on a mismatch); ``report.py`` and
``targets.py`` write the Markdown.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import datetime
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import checks
import measure
import provenance
import report
import targets
from scenarios import FULL_SCENARIOS, Scenario, ensure_data, select, warm_page_cache

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE / "_data"
DEFAULT_OUT = HERE / "RESULTS.md"
KNOWN_BACKENDS = ("reference", "cpu", "jax")


@dataclasses.dataclass
class Context:
    """What every scenario run needs."""

    data_dir: Path
    backends: list[str]
    repeat: int
    reference_repeat: int
    official: str | None
    official_timeout: float
    timeout: float
    cli_names: set[str]
    tmp: Path
    shared_caches: bool = False  # --quick: one numba + XLA cache for every process
    rounds: int = 3  # interleaved official / ours rounds of whole processes
    official_aliases: tuple[str, ...] = ("numpy",)  # the first is the baseline of the ratios
    partial_json: str | None = None  # --json-out + ".partial": records after every scenario


# --------------------------------------------------------------------------------------------
# One scenario


def run_scenario(sc: Scenario, ctx: Context) -> dict[str, Any]:
    meta = ensure_data(sc, ctx.data_dir)
    warm_page_cache(meta)
    rec: dict[str, Any] = {"meta": meta, "official": None, "cli": {}, "inproc": {}, "notes": []}
    _whole_process_rounds(sc, meta, ctx, rec)
    for b in ctx.backends:
        print(f"[{sc.name}] {b}: in process ...", flush=True)
        rec["inproc"][b] = _in_process(b, meta, ctx)
    rec["inproc"]["floor"] = measure.run_worker("floor", meta, repeat=ctx.repeat, timeout=None)
    rec["checks"] = checks.check_scenario(rec, ctx.backends)
    rec["failed"] = _report_problems(sc.name, rec, ctx.backends)
    print(report.summary_line(sc.name, rec, ctx.backends), flush=True)
    return rec


def _whole_process_rounds(sc: Scenario, meta: dict, ctx: Context, rec: dict) -> None:
    """``ctx.rounds`` rounds of official (each alias mode), then each backend's command line
    (first + second run); fills ``rec["official"]`` (its ``runs``), ``rec["official_alt"]``
    and ``rec["cli"][backend]`` (its ``rounds``)."""
    modes = ctx.official_aliases if ctx.official else ()
    official: dict[str, list[dict]] = {m: [] for m in modes}
    cli_backends = [b for b in ctx.backends if sc.name in ctx.cli_names]
    cli: dict[str, list[dict]] = {b: [] for b in cli_backends}
    for i in range(ctx.rounds if (modes or cli_backends) else 0):
        tag = f"[{sc.name}] round {i + 1}/{ctx.rounds}"
        for mode in modes:
            print(f"{tag}: official ({mode} aliases) ...", flush=True)
            official[mode].append(
                measure.time_official(
                    ctx.official, meta, timeout=ctx.official_timeout, aliases=mode
                )
            )
        for b in cli_backends:
            print(f"{tag}: {b} command line, first + second run ...", flush=True)
            cli[b].append(
                measure.time_cli_pair(
                    b, meta, ctx.tmp, timeout=ctx.timeout, shared=ctx.shared_caches
                )
            )
    if modes:
        runs = official[modes[0]]
        rep = next((r for r in runs if r.get("returncode") == 0), runs[0])
        rec["official"] = {**rep, "runs": runs}
        rec["official_alt"] = {m: official[m] for m in modes[1:]}
    for b, rounds in cli.items():
        rec["cli"][b] = {**rounds[0], "rounds": rounds}


def _in_process(backend: str, meta: dict, ctx: Context) -> dict[str, Any]:
    """The worker of one backend: empty compilation caches, or in ``--quick`` caches shared by
    all scenarios (their first runs then compile only once)."""
    repeat = ctx.reference_repeat if backend == "reference" else ctx.repeat
    if ctx.shared_caches:
        env = {"NUMBA_CACHE_DIR": str(ctx.tmp / "numba")}
        return measure.run_worker(
            backend,
            meta,
            repeat=repeat,
            timeout=ctx.timeout,
            env=env,
            xla_cache=str(ctx.tmp / "xla"),
        )
    with tempfile.TemporaryDirectory(prefix="bench-numba-", dir=ctx.tmp) as numba:
        env = {"NUMBA_CACHE_DIR": numba}
        return measure.run_worker(backend, meta, repeat=repeat, timeout=ctx.timeout, env=env)


def _errors(rec: dict, backends: list[str]) -> list[tuple[str, str]]:
    """(what, error text) of every process that failed."""
    found = []
    for i, r in enumerate(report.official_runs(rec)):
        if r.get("error"):
            found.append((f"official, round {i + 1}", r["error"]))
    for mode, runs in (rec.get("official_alt") or {}).items():
        found += [
            (f"official ({mode} aliases), round {i + 1}", r["error"])
            for i, r in enumerate(runs)
            if r.get("error")
        ]
    for b in backends:
        for i, pair in enumerate(report.cli_rounds(rec["cli"].get(b))):
            for run in ("first", "second"):
                if (pair.get(run) or {}).get("error"):
                    found.append((f"{b} CLI {run} run, round {i + 1}", pair[run]["error"]))
        for name in (b, "floor"):
            if (rec["inproc"].get(name) or {}).get("error"):
                found.append((f"{name} in process", rec["inproc"][name]["error"]))
    return found


def _report_problems(name: str, rec: dict, backends: list[str]) -> bool:
    """Prints failures and mismatches loudly; adds them to the notes. True if any."""
    failed = False
    for what, err in _errors(rec, backends):
        print(f"[{name}] {what} FAILED:\n{err}", file=sys.stderr, flush=True)
        rec["notes"].append(f"{name}, {what}: {err.splitlines()[0] if err else 'failed'}")
        failed = True
    c = rec["checks"]
    bad = [i for i in c["items"] if not i["ok"]]
    for i in bad:
        msg = f"[{name}] MISMATCH: {i['what']}: max |Δ| {i['max_diff']:.3g} > 1e-12"
        print(msg, flush=True)
        print(msg, file=sys.stderr, flush=True)
        rec["notes"].append(msg)
    state = "OK" if c["ok"] else ("MISMATCH" if bad else "NOT CHECKED")
    print(
        f"[{name}] equality: {state} ({len(c['items'])} comparisons, stats against {c['truth']})",
        flush=True,
    )
    return failed or not c["ok"]


# --------------------------------------------------------------------------------------------
# The whole run


def available_backends(wanted: str | None) -> tuple[list[str], tuple[str, ...]]:
    """(backends to run, ``ovis_jax.BACKENDS``)."""
    import ovis_jax

    have = tuple(getattr(ovis_jax, "BACKENDS", ("jax", "reference")))
    names = [b.strip() for b in wanted.split(",")] if wanted else list(KNOWN_BACKENDS)
    unknown = [b for b in names if b not in have]
    if wanted and unknown:
        raise SystemExit(f"backend(s) {unknown} not in ovis_jax.BACKENDS = {have}")
    return [b for b in names if b in have], have


def auto_backend(backends: list[str], machine: dict) -> str:
    """What ``backend="auto"`` picks here: jax with a GPU, cpu on a CPU-only machine."""
    on_gpu = not machine["accelerator"].startswith("none")
    for b in ("jax", "cpu") if on_gpu else ("cpu", "jax"):
        if b in backends:
            return b
    return backends[0]


def make_context(args: argparse.Namespace, backends: list[str], tmp: Path) -> Context:
    repeat = args.repeat if args.repeat is not None else (1 if args.quick else 3)
    rounds = args.rounds if args.rounds is not None else (1 if args.quick else 3)
    if rounds < 1:
        raise SystemExit(f"--rounds must be at least 1, not {rounds}")
    aliases = tuple(a.strip() for a in args.official_aliases.split(","))
    if not aliases or any(a not in ("numpy", "proxy") for a in aliases):
        raise SystemExit(f"--official-aliases: numpy and/or proxy, not {args.official_aliases!r}")
    cli = args.cli_scenarios or ("ovis-valid" if args.quick else "all")
    names = {s.name for s in FULL_SCENARIOS} if cli == "all" else set(cli.split(","))
    return Context(
        data_dir=Path(args.data_dir).resolve(),
        backends=backends,
        repeat=repeat,
        reference_repeat=max(0, min(repeat, args.reference_repeat)),
        official=str(Path(args.official).resolve()) if args.official else None,
        official_timeout=args.official_timeout,
        timeout=args.timeout,
        cli_names=set() if cli == "none" else names,
        tmp=tmp,
        shared_caches=args.quick,
        rounds=rounds,
        official_aliases=aliases,
        partial_json=args.json_out + ".partial" if args.json_out else None,
    )


def run_all(scenarios: list[Scenario], ctx: Context, jobs: int) -> dict[str, dict]:
    for sc in scenarios:  # data first, serially
        ensure_data(sc, ctx.data_dir)
    if jobs > 1:
        with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
            recs = list(pool.map(lambda sc: run_scenario(sc, ctx), scenarios))
    else:
        recs = []
        for sc in scenarios:
            recs.append(run_scenario(sc, ctx))
            if ctx.partial_json:  # what is done so far, should the run not finish
                done = {s.name: r for s, r in zip(scenarios, recs, strict=False)}
                Path(ctx.partial_json).write_text(json.dumps(done, default=_jsonable))
    return {sc.name: rec for sc, rec in zip(scenarios, recs, strict=True)}


def _load_average() -> float | None:
    """The 1-minute load average (None where the platform has none)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def run_info(
    args, argv, ctx, machine, code: dict, started: str, t0: float, load_start: float | None
) -> dict:
    official = (
        f"`{args.official}` via `benchmarks/official.py`"
        if args.official
        else "not run (pass `--official DIR`)"
    )
    command = " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    import ovis_jax

    return {
        "started": started,
        "elapsed_s": time.perf_counter() - t0,
        "code": provenance.code_text(
            code["snapshot"],
            code["start"],
            provenance.git_commit(),
            {code["hash"], _package_hash()} - {None},
        ),
        "machine": machine,
        "quick": args.quick,
        "official": official,
        "official_dir": args.official,
        "all_backends": getattr(ovis_jax, "BACKENDS", None),
        "command": f"python benchmarks/bench.py {command}".strip(),
        "repeat": ctx.repeat,
        "reference_repeat": ctx.reference_repeat,
        "rounds": ctx.rounds,
        "official_aliases": list(ctx.official_aliases),
        "load": [load_start, _load_average()],
    }


def _package_hash() -> str:
    import ovis_jax

    return provenance.source_hash(Path(ovis_jax.__file__).resolve().parent)


def write_outputs(args, run: dict, md: str, n_scenarios: int) -> None:
    partial = n_scenarios < len(FULL_SCENARIOS)
    out = args.out or (None if args.quick or partial else str(DEFAULT_OUT))
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(md, encoding="utf-8")
        print(f"wrote {out}")
    elif partial and not args.quick:
        print(f"(a subset of the scenarios: {DEFAULT_OUT.name} not overwritten; use --out)")
    if args.json_out:
        raw = json.loads(json.dumps(run, default=_jsonable))
        Path(args.json_out).write_text(json.dumps(raw, indent=1), encoding="utf-8")
        print(f"wrote {args.json_out}")


def _jsonable(x: Any) -> Any:
    """Arrays (precision, recall) are left out of the JSON."""
    return None if hasattr(x, "shape") else str(x)


def bench(args: argparse.Namespace, argv: list[str] | None, snapshot: str | None) -> int:
    started = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    t0, load_start = time.perf_counter(), _load_average()
    scenarios = select(args.scenarios, quick=args.quick)
    if args.prepare:
        return prepare(scenarios, Path(args.data_dir))
    backends, _ = available_backends(args.backends)
    machine = provenance.machine_info()
    code = {"snapshot": snapshot, "start": provenance.git_commit(), "hash": _package_hash()}
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        ctx = make_context(args, backends, Path(tmp))
        jobs = args.jobs if args.jobs is not None else (2 if args.quick else 1)
        records = run_all(scenarios, ctx, jobs)
    info = run_info(args, argv, ctx, machine, code, started, t0, load_start)
    run = {"info": info, "backends": backends, "records": records}
    md = render_run(run, scenarios)
    print("\n" + md)
    write_outputs(args, run, md, len(scenarios))
    failed = any(rec["failed"] for rec in records.values())
    print(f"total benchmark time {time.perf_counter() - t0:.1f} s")
    if failed:
        print("FAILED: see the messages above (errors or MISMATCH)", file=sys.stderr)
    return 1 if failed else 0


def render_run(run: dict, scenarios: list[Scenario]) -> str:
    info, backends = run["info"], run["backends"]
    machine = info["machine"]
    main_backend = auto_backend(backends, machine)
    lines = targets.targets(
        run["records"],
        backends,
        main_backend,
        bool(info.get("official_dir")),
        machine["accelerator"],
    )
    return report.render(run, scenarios, lines)


def render_json(args: argparse.Namespace) -> int:
    """Renders the Markdown of a run saved with ``--json-out`` again (after a change of the
    report), without running anything."""
    run = json.loads(Path(args.render_json).read_text(encoding="utf-8"))
    scenarios = select(",".join(run["records"]), quick=run["info"]["quick"])
    md = render_run(run, scenarios)
    print(md)
    if args.out:
        Path(args.out).write_text(md, encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


def prepare(scenarios: list[Scenario], data_dir: Path) -> int:
    for sc in scenarios:
        meta = ensure_data(sc, data_dir)
        print(
            f"{sc.name}: {meta['gt_path']} ({meta['gt_bytes'] / 1e6:.1f} MB), "
            f"{meta['results_path']} ({meta['results_bytes'] / 1e6:.1f} MB)"
        )
    return 0


def profile(args: argparse.Namespace) -> int:
    """cProfile of the last warm in-process run of one backend on one scenario."""
    import pstats

    (sc,) = select(args.profile, quick=args.quick)
    meta = ensure_data(sc, Path(args.data_dir))
    backends, _ = available_backends(args.backends)
    backend = backends[0] if args.backends else auto_backend(backends, provenance.machine_info())
    with tempfile.TemporaryDirectory(prefix="bench-prof-") as tmp:
        prof = str(Path(tmp) / "run.prof")
        rec = measure.run_worker(
            backend, meta, repeat=max(1, args.repeat or 1), timeout=None, profile_out=prof
        )
        if rec.get("error"):
            print(rec["error"], file=sys.stderr)
            return 1
        run = rec["runs"][-1]
        print(
            f"{backend}, profiled warm run (profiler overhead included): {run['total']:.2f} s;"
            f" timings { {k: round(v, 3) for k, v in run['timings'].items()} }"
        )
        for key in ("tottime", "cumulative"):
            print(f"\n==== top {args.profile_top} by {key} ====")
            pstats.Stats(prof).strip_dirs().sort_stats(key).print_stats(args.profile_top)
    return 0


# --------------------------------------------------------------------------------------------
# Command line


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = p.add_argument
    add(
        "--official",
        metavar="DIR",
        help="a copy of the official evaluator (oviseval.py, ovis.py"
        " / ytvoseval.py, ytvos.py): timed as a whole process, and the stats checked against it",
    )
    add("--quick", action="store_true", help="tiny scenarios (< 60 s); the tables are printed")
    add("--scenarios", help="comma-separated subset (default: all)")
    add("--backends", help="comma-separated subset of reference,cpu,jax (default: all there are)")
    add(
        "--out",
        help="Markdown output (default benchmarks/RESULTS.md for a full run of all "
        "scenarios; with --quick or a subset of --scenarios the tables are only printed)",
    )
    add("--json-out", help="also write the raw numbers as JSON here")
    add("--repeat", type=int, default=None, help="warm in-process runs (default 3; 1 in --quick)")
    add(
        "--rounds",
        type=int,
        default=None,
        help="interleaved rounds of whole processes, official then ours, per scenario: medians"
        " and min-max are reported (default 3; 1 in --quick)",
    )
    add(
        "--official-aliases",
        default="numpy",
        help="where the official process gets np.float & co.: 'numpy' (set on NumPy itself, "
        "default), 'proxy' (a proxy module), or 'numpy,proxy' (both timed in every round; the "
        "first is the baseline of the ratios)",
    )
    add("--reference-repeat", type=int, default=1, help="warm runs of the reference (default 1)")
    add(
        "--cli-scenarios",
        help="scenarios whose command line is timed: comma-separated, 'all' "
        "(default) or 'none'; 'ovis-valid' in --quick",
    )
    add("--timeout", type=float, default=1800.0, help="seconds per process of ours (default 1800)")
    add("--official-timeout", type=float, default=3600.0, help="seconds for the official process")
    add("--data-dir", default=str(DEFAULT_DATA), help="where generated data is cached")
    add(
        "--profile",
        metavar="SCENARIO",
        help="only cProfile a warm in-process evaluation (of the "
        "first of --backends, else the auto backend) and print the top functions",
    )
    add("--profile-top", type=int, default=40)
    add("--prepare", action="store_true", help="only generate (or check) the cached data sets")
    add(
        "--render-json",
        metavar="RUN.json",
        help="only render the Markdown of a run saved with --json-out (to --out, or printed)",
    )
    add(
        "--snapshot",
        metavar="REV",
        help="benchmark the ovis_jax package of git revision REV, "
        "extracted with `git archive` to a temporary directory first on PYTHONPATH",
    )
    add(
        "--jobs",
        type=int,
        default=None,
        help="scenarios run concurrently (default 1; 2 in "
        "--quick, whose numbers are not meaningful anyway)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render_json:
        return render_json(args)
    snapshot = provenance.use_snapshot(args.snapshot) if args.snapshot else None
    try:
        if args.profile:
            return profile(args)
        return bench(args, argv, snapshot[0] if snapshot else None)
    finally:
        if snapshot:
            shutil.rmtree(snapshot[1], ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
