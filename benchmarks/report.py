"""Markdown rendering of a benchmark run: one small function per table.

A run is ``{"info": {...}, "backends": [...], "records": {scenario name: record}}``; a record
holds the scenario's ``meta``, the ``official`` whole-process run (None when not run; its
interleaved rounds under ``official["runs"]``, other alias modes under ``official_alt[mode]``),
the command-line runs ``cli[backend]["first" | "second"]`` (every round under
``cli[backend]["rounds"]``), the in-process workers ``inproc[backend]`` (and
``inproc["floor"]``) and the equality ``checks``. Records of runs before the interleaved rounds
(one run each, no ``runs`` / ``rounds``) render as rounds of one.
"""

from __future__ import annotations

import statistics

NOT_RUN = "not run"

# --------------------------------------------------------------------------------------------
# Cells


def secs(x: float | None) -> str:
    if x is None:
        return "n/a"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    if x >= 0.1:
        return f"{x:.2f}"
    return f"{x:.3f}"


def ratio(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{x:.2g}×" if x < 1 else f"{x:.1f}×" if x < 100 else f"{x:.0f}×"


def mb(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.0f}"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


# --------------------------------------------------------------------------------------------
# Numbers out of the records


def ok_wall(rec: dict | None) -> float | None:
    """Wall clock of a whole-process run that succeeded."""
    return rec["wall_s"] if rec and rec.get("returncode") == 0 else None


def official_runs(record: dict) -> list[dict]:
    """Every whole-process run of the official (baseline alias mode), in round order."""
    off = record.get("official")
    return [] if off is None else list(off.get("runs") or [off])


def cli_rounds(pair: dict | None) -> list[dict]:
    """``[{"first": run, "second": run}, ...]``: every round of one backend's command line."""
    if not pair:
        return []
    return list(pair.get("rounds") or [{"first": pair["first"], "second": pair["second"]}])


def median_wall(runs: list[dict | None]) -> float | None:
    """Median wall clock of the runs that succeeded (None if none did)."""
    walls = [w for w in map(ok_wall, runs) if w is not None]
    return statistics.median(walls) if walls else None


def official_wall(record: dict) -> float | None:
    """The baseline: the median of the official's interleaved rounds."""
    return median_wall(official_runs(record))


def cli_wall(record: dict, backend: str, run: str) -> float | None:
    """Median wall clock of one backend's ``run`` ("first" | "second") over the rounds."""
    return median_wall([r.get(run) for r in cli_rounds(record["cli"].get(backend))])


def spread_cell(runs: list[dict | None]) -> str:
    """``median (min–max)`` of the runs' wall clocks; failures and timeouts say so."""
    runs = [r for r in runs if r is not None]
    if not runs:
        return NOT_RUN
    walls = sorted(w for w in map(ok_wall, runs) if w is not None)
    bad = len(runs) - len(walls)
    if not walls:
        return failed_cell(runs[0])
    text = secs(statistics.median(walls))
    text += f" ({secs(walls[0])}–{secs(walls[-1])})" if len(walls) > 1 else ""
    return text + (f", {bad} of {len(runs)} failed" if bad else "")


def round_ratios(record: dict, backend: str, run: str) -> list[float]:
    """official / ours of each round (the official run of a round and ours just after it)."""
    offs = official_runs(record)
    pairs = cli_rounds(record["cli"].get(backend))
    out = []
    for off, pair in zip(offs, pairs, strict=False):
        a, b = ok_wall(off), ok_wall(pair.get(run))
        if a and b:
            out.append(a / b)
    return out


def failed_cell(rec: dict | None) -> str:
    if rec is None:
        return NOT_RUN
    if rec.get("timed_out"):
        return f"> {secs(rec.get('wall_s'))} (timeout)"
    return "error" if rec.get("returncode") != 0 else secs(rec["wall_s"])


def warm_runs(worker: dict) -> list[dict]:
    return [r for r in worker.get("runs", [])[1:] if "total" in r]


def warm_best(worker: dict) -> float | None:
    runs = warm_runs(worker)
    return min(r["total"] for r in runs) if runs else None


def first_run(worker: dict) -> dict | None:
    runs = worker.get("runs", [])
    return runs[0] if runs and "total" in runs[0] else None


def speedup(official: float | None, ours: float | None, record: dict) -> str:
    """official / ours (> 1: we are faster); "not run" when the official did not run, "n/a"
    when it (or ours) failed."""
    if record.get("official") is None:
        return NOT_RUN
    return ratio(official / ours) if official and ours else "n/a"


# --------------------------------------------------------------------------------------------
# Sections


def header(run: dict) -> list[str]:
    info = run["info"]
    m, v = info["machine"], info["machine"]["versions"]
    quick = " (**quick mode: tiny data, not meaningful**)" if info["quick"] else ""
    return [
        "# Benchmarks: the official evaluator vs ovis_jax (reference, cpu, jax)",
        "",
        f"Generated by `benchmarks/bench.py`{quick}.",
        "",
        f"- Date: {info['started']} (benchmark took {info['elapsed_s'] / 60:.1f} min)",
        f"- Code: {info['code']}",
        f"- Machine: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), "
        f"{m['ram_gb']:.1f} GiB RAM, {m['platform']}; accelerator: {m['accelerator']}",
        "- Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        f"- Official evaluator: {info['official']}",
        f"- Backends: {', '.join(run['backends'])} (`ovis_jax.BACKENDS` = {info['all_backends']})",
        f"- Reproduce: `{info['command']}`",
        f"- Warm = best of {info['repeat']} warm runs ({info['reference_repeat']} for the "
        "reference backend).",
        f"- Whole processes: {info.get('rounds', 1)} interleaved round(s) per scenario (official,"
        " then ours); official NumPy aliases: "
        + " and ".join(f"`{a}`" for a in info.get("official_aliases", ["proxy"]))
        + " (the first is the baseline of every ratio).",
        "",
        "The machine is shared and noisy: compare ratios measured in the same run, and treat "
        "differences below ~20 % as noise." + _load_text(info.get("load")),
    ] + (
        [
            "",
            "Quick mode: one numba and one XLA cache shared by every process, so no *first run* "
            "is a cold start.",
        ]
        if info["quick"]
        else []
    )


def _load_text(load: list | None) -> str:
    """The 1-minute load average at the start and the end of the run, if recorded."""
    if not load or None in load:
        return ""
    return f" Load average (1 min) at the start / end of the run: {load[0]:.1f} / {load[1]:.1f}."


def scenarios_section(scenarios: list, records: dict) -> list[str]:
    rows = []
    for sc in scenarios:
        m = records[sc.name]["meta"]
        rows.append(
            [
                sc.name,
                sc.summary,
                str(m["videos"]),
                sc.frames_text(),
                sc.sizes_text(),
                str(sc.num_categories),
                "OVIS" if sc.occlusion else "YTVIS",
                f"{m['gt_tracks']:,}",
                f"{m['results']:,}",
                f"{m['gt_masks']:,}",
                f"{m['result_masks']:,}",
                f"{m['gt_bytes'] / 1e6:.1f} MB",
                f"{m['results_bytes'] / 1e6:.1f} MB",
            ]
        )
    head = [
        "scenario",
        "data",
        "videos",
        "frames/video",
        "frame sizes",
        "categories",
        "format",
        "GT tracks",
        "results",
        "GT masks",
        "result masks",
        "GT JSON",
        "results JSON",
    ]
    out = ["", "## Scenarios", "", *table(head, rows)]
    shas = [(sc.name, records[sc.name]["meta"]["gt_sha"]) for sc in scenarios]
    for i, (a, sa) in enumerate(shas):
        out += [
            f"\n`{a}` and `{b}` have byte-identical ground-truth files."
            for b, sb in shas[i + 1 :]
            if sa == sb
        ]
    return out


def peak_rss(runs: list[dict | None]) -> float | None:
    """The largest peak RSS of the runs that succeeded."""
    return max((r.get("peak_rss_mb") or 0 for r in runs if ok_wall(r)), default=0) or None


def _official_rows(name: str, record: dict) -> list[list[str]]:
    off = record.get("official")
    if off is None:
        return [[name, "official", NOT_RUN, "–", NOT_RUN, "–", "–", "–", "–"]]
    runs = official_runs(record)
    mode = f" ({off['aliases']} aliases)" if record.get("official_alt") else ""
    rss = mb(peak_rss(runs))
    rows = [[name, f"official{mode}", spread_cell(runs), "–", rss, "–", "–", "–", "–"]]
    for alt, alt_runs in (record.get("official_alt") or {}).items():
        base, mine = official_wall(record), median_wall(alt_runs)
        rel = f"time {ratio(mine / base)} the baseline's" if base and mine else "–"
        alt_name, rss = f"official ({alt} aliases)", mb(peak_rss(alt_runs))
        rows.append([name, alt_name, spread_cell(alt_runs), "–", rss, rel, "–", "–", "–"])
    return rows


def _speedup_cell(record: dict, backend: str, run: str) -> str:
    """official median / ours median, with the min–max of the per-round ratios."""
    off, ours = official_wall(record), cli_wall(record, backend, run)
    cell = speedup(off, ours, record)
    per_round = round_ratios(record, backend, run)
    if off and ours and len(per_round) > 1:
        cell += f" ({ratio(min(per_round))}–{ratio(max(per_round))})"
    return cell


def _cli_row(name: str, backend: str, record: dict) -> list[str]:
    rounds = cli_rounds(record["cli"].get(backend))
    if not rounds:
        return [name, backend, NOT_RUN, NOT_RUN, NOT_RUN, "–", "–", "–", "–"]
    firsts, seconds = [r.get("first") for r in rounds], [r.get("second") for r in rounds]
    off_rss = peak_rss(official_runs(record)) if official_wall(record) else None
    rss = peak_rss(firsts + seconds)
    return [
        name,
        backend,
        spread_cell(firsts),
        spread_cell(seconds),
        mb(rss),
        _speedup_cell(record, backend, "first"),
        _speedup_cell(record, backend, "second"),
        ratio(rss / off_rss) if rss and off_rss else speedup(None, None, record),
        _equal_cell(record, backend),
    ]


def _equal_cell(record: dict, backend: str) -> str:
    checks = record["checks"]
    worst = checks["by_backend"].get(backend)
    if worst is None:
        return "not checked"
    return "yes" if worst <= 1e-12 else f"**NO** (max Δ {worst:.3g})"


def whole_process_section(scenarios: list, records: dict, backends: list[str]) -> list[str]:
    rows = []
    for sc in scenarios:
        rows += _official_rows(sc.name, records[sc.name])
        rows += [_cli_row(sc.name, b, records[sc.name]) for b in backends]
    n = max((len(official_runs(r)) for r in records.values()), default=0)
    n = max([n] + [len(cli_rounds(p)) for r in records.values() for p in r["cli"].values()])
    head = [
        "scenario",
        "engine",
        "first run, empty caches (s)",
        "second run (s)",
        "peak RSS (MB)",
        "speed-up first",
        "speed-up second",
        "RSS / official",
        "equal to official (≤1e-12)",
    ]
    return [
        "",
        "## Whole process (command line)",
        "",
        "Wall clock of one process from start to exit: the official evaluator through "
        "`benchmarks/official.py` (the user's copy of `oviseval.py` / `ytvoseval.py`), ours as "
        "`python -m ovis_jax.eval --backend B --json OUT -q`. "
        f"{n} interleaved round(s) per scenario: official, then each backend's first and second "
        "run, then the official again; each cell is the median (min–max) over the rounds. "
        "*First run* = empty numba "
        "(`NUMBA_CACHE_DIR`) and XLA (`--cache-dir`) caches, a user's very first run; *second "
        "run* = the caches the first run filled. Peak RSS = the largest `ru_maxrss` of the "
        "processes. Speed-up = official median / ours median (> 1: we are faster), with the "
        "min–max of the per-round ratios (official of a round / ours of that round). The last "
        "column compares every backend's stats (CLI and in-process) with the official's, or with "
        "the reference backend's where the official did not run.",
        "",
        *table(head, rows),
    ]


def cpu_cell(runs: list[dict | None]) -> str:
    """``median (min–max)`` of user + sys CPU seconds of the runs that succeeded."""
    cpu = sorted(r["user_s"] + r["sys_s"] for r in runs if ok_wall(r) and "user_s" in r)
    if not cpu:
        return "n/a"
    text = secs(statistics.median(cpu))
    return text + (f" ({secs(cpu[0])}–{secs(cpu[-1])})" if len(cpu) > 1 else "")


def cpu_time_section(scenarios: list, records: dict, backends: list[str]) -> list[str]:
    """CPU seconds (user + sys) of the whole processes above: steadier than the wall clock on a
    loaded machine, but not a speed-up (ours runs threads, the official one)."""
    rows = []
    for sc in scenarios:
        rec = records[sc.name]
        if rec.get("official") is not None:
            mode = f" ({rec['official']['aliases']} aliases)" if rec.get("official_alt") else ""
            rows.append([sc.name, f"official{mode}", cpu_cell(official_runs(rec)), "–"])
        for mode, alt in (rec.get("official_alt") or {}).items():
            rows.append([sc.name, f"official ({mode} aliases)", cpu_cell(alt), "–"])
        for b in backends:
            rounds = cli_rounds(rec["cli"].get(b))
            if rounds:
                first = cpu_cell([r.get("first") for r in rounds])
                rows.append([sc.name, b, first, cpu_cell([r.get("second") for r in rounds])])
    if not rows:
        return []
    head = ["scenario", "engine", "first run: CPU s", "second run: CPU s"]
    return [
        "",
        "## CPU time of the whole processes",
        "",
        "User + system CPU seconds (median (min–max) over the rounds): steadier than the wall "
        "clock when the machine is shared, but not a speed-up (the official runs one thread, "
        "ours a thread per core).",
        "",
        *table(head, rows),
    ]


def _inproc_row(name: str, backend: str, record: dict) -> list[str]:
    w = record["inproc"].get(backend)
    first = first_run(w) if w else None
    if not first:
        why = "error" if w and w.get("error") else NOT_RUN
        return [name, backend, why, why, why, "–", "–", "–"]
    best, runs = warm_best(w), warm_runs(w)
    med = f" (med {secs(statistics.median(r['total'] for r in runs))})" if len(runs) > 1 else ""
    floor = warm_best(record["inproc"].get("floor") or {})
    return [
        name,
        backend,
        secs(w.get("import_s")),
        secs(first["total"]),
        (secs(best) + med) if best else "n/a",
        ratio(best / floor) if best and floor else "n/a",
        mb(first.get("peak_rss_mb")),
        speedup(official_wall(record), best, record),
    ]


def inprocess_section(scenarios: list, records: dict, backends: list[str]) -> list[str]:
    rows = []
    for sc in scenarios:
        floor = warm_best(records[sc.name]["inproc"].get("floor") or {})
        rows.append(
            [
                sc.name,
                "floor (`json.load`)",
                "–",
                "–",
                secs(floor),
                "1.0×" if floor else "n/a",
                mb((records[sc.name]["inproc"].get("floor") or {}).get("peak_rss_mb")),
                "–",
            ]
        )
        rows += [_inproc_row(sc.name, b, records[sc.name]) for b in backends]
    head = [
        "scenario",
        "backend",
        "import (s)",
        "first run (s)",
        "warm (s)",
        "warm / floor",
        "peak RSS, first run (MB)",
        "speed-up warm vs official process",
    ]
    return [
        "",
        "## In process (`evaluate(gt_path, results_path, backend=B)`)",
        "",
        "Each backend in a fresh process of its own (`benchmarks/worker.py`): import, then the "
        "first run (compilation included: empty numba cache, no XLA cache; in `--quick` both are "
        "shared between scenarios), then the warm runs: best (median). "
        "Floor = `json.load` of both files (stdlib). Peak RSS = `VmHWM` after the first run. "
        "Speed-up = the official evaluator's whole process (median of the interleaved rounds "
        "above) / our best warm run.",
        "",
        *table(head, rows),
    ]


def _timed_run(worker: dict) -> dict | None:
    runs = warm_runs(worker)
    return min(runs, key=lambda r: r["total"]) if runs else first_run(worker)


def stage_section(scenarios: list, records: dict, backends: list[str]) -> list[str]:
    picked = [
        (sc.name, b, _timed_run(records[sc.name]["inproc"].get(b) or {}))
        for sc in scenarios
        for b in backends
    ]
    keys: list[str] = []
    for _, _, run in picked:
        keys += [k for k in (run or {}).get("timings", {}) if k not in keys]
    out = ["", "## Stage split (seconds, `result.timings` of the best warm run)", ""]
    if not keys:
        return [*out, "This version of `ovis_jax` reports no `result.timings`."]
    rows = []
    for name, b, run in picked:
        t = (run or {}).get("timings", {})
        cells = [secs(t[k]) if k in t else "–" for k in keys]
        total = run["total"] if run else None
        rows.append(
            [name, b, (run or {}).get("ran", b), *cells, secs(sum(t.values()) or None), secs(total)]
        )
    head = ["scenario", "backend", "ran", *keys, "sum of stages", "total"]
    return [
        *out,
        "Stages as the evaluator reports them, in its order; *total* is the wall "
        "clock of `evaluate()`.",
        "",
        *table(head, rows),
    ]


def equality_section(scenarios: list, records: dict) -> list[str]:
    out = ["", "## Equality (≤ 1e-12)", ""]
    for sc in scenarios:
        c = records[sc.name]["checks"]
        bad = [i for i in c["items"] if not i["ok"]]
        state = "OK" if c["ok"] else ("**MISMATCH**" if bad else "not checked")
        out.append(
            f"- {sc.name}: {state} ({len(c['items'])} comparisons; stats against {c['truth']})"
        )
        out += [f"  - **{i['what']}: max |Δ| {i['max_diff']:.3g}**" for i in bad]
    return out


def render(run: dict, scenarios: list, targets: list[str]) -> str:
    records, backends = run["records"], run["backends"]
    lines = header(run) + scenarios_section(scenarios, records)
    lines += whole_process_section(scenarios, records, backends)
    lines += cpu_time_section(scenarios, records, backends)
    lines += inprocess_section(scenarios, records, backends)
    lines += stage_section(scenarios, records, backends)
    lines += equality_section(scenarios, records)
    lines += ["", "## Targets (issue 8)", "", *targets]
    notes = [explain(n) for sc in scenarios for n in records[sc.name].get("notes", [])]
    if notes:
        lines += ["", "## Notes", "", *[f"- {n}" for n in notes]]
    return "\n".join(lines) + "\n"


SIGNALS = {
    "-15": "SIGTERM from outside the benchmark, whose own timeout sends SIGKILL: someone's kill "
    "or a memory watchdog",
    "-9": "SIGKILL: the benchmark's timeout, or the kernel's out-of-memory killer (see dmesg)",
}


def explain(note: str) -> str:
    """A note with the meaning of a negative exit status (killed by a signal) added."""
    for status, meaning in SIGNALS.items():
        if note.endswith(f"exit status {status}"):
            return f"{note} ({meaning}); the runs it finished are in the tables"
    return note


def summary_line(name: str, record: dict, backends: list[str]) -> str:
    """One line per scenario on stdout while the benchmark runs."""
    parts = [f"official {spread_cell(official_runs(record))}"]
    for b in backends:
        rounds = cli_rounds(record["cli"].get(b))
        w = record["inproc"].get(b) or {}
        first = spread_cell([r.get("first") for r in rounds])
        second = spread_cell([r.get("second") for r in rounds])
        parts.append(f"{b} CLI {first}/{second} warm {secs(warm_best(w))}")
    return f"[{name}] " + " | ".join(parts)
