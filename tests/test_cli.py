"""The command line: end to end through ``python -m`` (a few runs), the rest in-process."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys

import pytest

import ovis_jax
from ovis_jax._src.cli import eval as cli
from ovis_jax._src.metrics.ap.summary import OVIS_KEYS, YTVIS_KEYS

OFFICIAL_ORDER = (
    "AP", "AP50", "AP75", "APs", "APm", "APl", "APso", "APmo", "APho",
    "AR1", "AR10", "AR100", "ARs", "ARm", "ARl", "ARso", "ARmo", "ARho",
)  # fmt: skip

#: (AP or AR, IoU, area, occlusion, maxDets) of the 18 OVIS lines, in print order (metric step 12).
OVIS_LINES = [
    ("AP", "0.50:0.95", "all", "all", 100),
    ("AP", "0.50", "all", "all", 100),
    ("AP", "0.75", "all", "all", 100),
    ("AP", "0.50:0.95", "small", "all", 100),
    ("AP", "0.50:0.95", "medium", "all", 100),
    ("AP", "0.50:0.95", "large", "all", 100),
    ("AP", "0.50:0.95", "all", "light", 100),
    ("AP", "0.50:0.95", "all", "medium", 100),
    ("AP", "0.50:0.95", "all", "heavy", 100),
    ("AR", "0.50:0.95", "all", "all", 1),
    ("AR", "0.50:0.95", "all", "all", 10),
    ("AR", "0.50:0.95", "all", "all", 100),
    ("AR", "0.50:0.95", "small", "all", 100),
    ("AR", "0.50:0.95", "medium", "all", 100),
    ("AR", "0.50:0.95", "large", "all", 100),
    ("AR", "0.50:0.95", "all", "light", 100),
    ("AR", "0.50:0.95", "all", "medium", 100),
    ("AR", "0.50:0.95", "all", "heavy", 100),
]
YTVIS_LINES = [(k, i, a, "all", m) for k, i, a, o, m in OVIS_LINES if o == "all"]

_LINE = re.compile(
    r"^ Average (?:Precision|Recall) +\((AP|AR)\) @\[ IoU=(\S+) +\| area= *(\w+) "
    r"(?:\| occlusion= *(\w+) )?\| maxDets= *(\d+) \] = (\S+)$"
)


def parse_summary(lines: list[str]) -> list[tuple]:
    """(AP/AR, IoU, area, occlusion, maxDets, value) of each summary line."""
    out = []
    for line in lines:
        m = _LINE.match(line)
        assert m, f"not a summary line: {line!r}"
        kind, iou, area, occ, max_det, value = m.groups()
        assert re.fullmatch(r"-?\d+\.\d{3}", value), line
        v = float(value)
        assert v == -1.0 or 0.0 <= v <= 1.0, line
        out.append((kind, iou, area, occ or "all", int(max_det), v))
    return out


def run_cli(*args: str, module: str = "ovis_jax.eval") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def files(tmp_path, tiny):
    """Paths of the tiny OVIS ground truth and results, plus where to write JSON."""
    gt, results = tiny
    results.append(dict(results[0], category_id=42))  # not in the ground truth: one warning
    gt_path, results_path = tmp_path / "gt.json", tmp_path / "results.json"
    gt_path.write_text(json.dumps(gt))
    results_path.write_text(json.dumps(results))
    return str(gt_path), str(results_path), str(tmp_path / "out.json")


# --------------------------------------------------------------------------------------------
# End to end (subprocess): keep these few, each one costs an interpreter start.


def test_demo_prints_the_18_numbers():
    proc = run_cli("--demo", "--backend", "reference")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    rows = parse_summary(lines[:18])
    assert [r[:5] for r in rows] == OVIS_LINES
    assert lines[18] == ""
    # AP then AR per track-length range (OVIS: 4 ranges), then the per-category table.
    length = lines[19:27]
    assert [line.split("length=")[1].split()[0] for line in length] == [
        "short", "medium", "long", "very_long"
    ] * 2  # fmt: skip
    assert [line.split()[2] for line in length] == ["(AP)"] * 4 + ["(AR)"] * 4
    assert lines[27] == ""
    assert lines[28].split() == ["id", "category", "AP", "AP50", "AP75", "AR100"]
    assert len(lines) > 29  # one row per category
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_json_output_and_stdout(files):
    gt_path, results_path, out = files
    proc = run_cli("--gt", gt_path, "--results", results_path, "--json", out,
                   "--backend", "reference")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(open(out).read())
    assert list(doc) == [
        "format", "stats", "length", "length_ranges", "per_category", "warnings", "backend"
    ]  # fmt: skip
    assert doc["length_ranges"] == {
        "short": [0, 16], "medium": [17, 32], "long": [33, 96], "very_long": [97, 1e10]
    }  # fmt: skip
    assert list(doc["length"]) == [
        f"{kind}_{name}" for kind in ("AP", "AR") for name in doc["length_ranges"]
    ]
    assert doc["backend"] == "reference"
    assert doc["format"] == "ovis"
    assert tuple(doc["stats"]) == OFFICIAL_ORDER == OVIS_KEYS
    assert all(isinstance(v, float) for v in doc["stats"].values())
    assert [c["id"] for c in doc["per_category"]] == [1, 2]
    assert [c["name"] for c in doc["per_category"]] == ["person", "dog"]
    for c in doc["per_category"]:
        assert list(c) == ["id", "name", *OVIS_KEYS, *doc["length"]]
    (warning,) = doc["warnings"]
    assert "category_id not in the ground truth (42)" in warning
    # The printed numbers are the JSON numbers, rounded; the warning goes to stderr once.
    printed = parse_summary(proc.stdout.splitlines()[:18])
    assert [r[5] for r in printed] == [round(v, 3) for v in doc["stats"].values()]
    # the file written is reported once (issue 17), the warning once
    assert sorted(proc.stderr.splitlines()) == sorted([f"warning: {warning}", f"wrote {out}"])
    # Same numbers as the library.
    expected = ovis_jax.evaluate(gt_path, results_path, backend="reference")
    assert doc["stats"] == expected.stats


@pytest.mark.slow
def test_youtube_vis_ground_truth_gives_12_numbers(tmp_path, tiny_ytvis):
    gt, results = tiny_ytvis
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "res.json").write_text(json.dumps(results))
    out = tmp_path / "out.json"
    proc = run_cli(
        "--gt", str(tmp_path / "gt.json"), "--results", str(tmp_path / "res.json"),
        "--json", str(out), "--backend", "reference", module="ovis_jax",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    rows = parse_summary(lines[:12])
    assert [r[:5] for r in rows] == YTVIS_LINES
    assert "occlusion" not in proc.stdout
    assert lines[12] == ""
    assert [line.split("length=")[1].split()[0] for line in lines[13:19]] == [
        "short", "medium", "long"
    ] * 2  # fmt: skip
    assert lines[19] == ""
    doc = json.loads(out.read_text())
    assert doc["format"] == "ytvis"
    assert tuple(doc["stats"]) == YTVIS_KEYS
    assert len(doc["stats"]) == 12


@pytest.mark.slow
def test_bad_file_exits_2_with_one_error_line(tmp_path, files):
    gt_path, _, _ = files
    bad = tmp_path / "bad.json"
    bad.write_text('[{"video_id": 1, "score": 0.5,, oops')
    proc = run_cli("--gt", gt_path, "--results", str(bad), "--backend", "reference")
    assert proc.returncode == 2
    assert proc.stdout == ""
    (line,) = proc.stderr.splitlines()
    assert line.startswith("error: ")
    assert "bad.json" in line and "not valid JSON" in line
    assert "Traceback" not in proc.stderr


def test_missing_file_exits_2(tmp_path, files):
    _, results_path, _ = files
    proc = run_cli("--gt", str(tmp_path / "missing.json"), "--results", results_path)
    assert proc.returncode == 2
    (line,) = proc.stderr.splitlines()
    assert line.startswith("error: ") and "missing.json" in line
    assert "Traceback" not in proc.stderr


# --------------------------------------------------------------------------------------------
# In-process


def test_output_layout(files, capsys):
    gt_path, results_path, _ = files
    assert cli.main(["--gt", gt_path, "--results", results_path, "--backend", "reference"]) == 0
    captured = capsys.readouterr()
    result = ovis_jax.evaluate(gt_path, results_path, backend="reference")
    expected = "\n\n".join(
        (
            ovis_jax.format_summary(result),
            ovis_jax.format_length(result),
            ovis_jax.format_per_category(result),
        )
    )
    assert captured.out == expected + "\n"
    assert captured.err == "".join(f"warning: {w}\n" for w in result.warnings)


def test_format_error_in_results_names_the_item(files, tiny, tmp_path, capsys):
    gt_path, _, _ = files
    _, results = tiny
    results[2]["segmentations"] = results[2]["segmentations"][:1]
    path = tmp_path / "short.json"
    path.write_text(json.dumps(results))
    assert cli.main(["--gt", gt_path, "--results", str(path), "--backend", "reference"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "error: results[2] (video_id 2): 'segmentations' has 1 entries, expected 2 "
        "(the length of video 2)"
    ]


def test_no_warning_is_printed_twice(tmp_path, tiny, capsys):
    gt, results = tiny
    gt["annotations"][0]["occlusion"] = [None, None, None]  # a ground-truth warning
    results[0]["category_id"] = 9  # a results warning
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "res.json").write_text(json.dumps(results))
    args = ["--gt", str(tmp_path / "gt.json"), "--results", str(tmp_path / "res.json")]
    assert cli.main([*args, "--backend", "reference", "-q"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and len(set(err)) == 2
    assert all(line.startswith("warning: ") for line in err)
    assert "no occlusion label" in err[0]
    assert "(9)" in err[1]


def test_quiet_prints_nothing_on_stdout(files, capsys):
    gt_path, results_path, out = files
    argv = ["--gt", gt_path, "--results", results_path, "--json", out, "-q"]
    assert cli.main([*argv, "--backend", "reference"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("warning: ")
    assert json.loads(open(out).read())["format"] == "ovis"


def test_verbose_logs_progress_and_restores_logging(files, capsys):
    gt_path, results_path, _ = files
    package = logging.getLogger("ovis_jax")
    root = logging.getLogger()
    before = (package.level, root.level, list(root.handlers))
    assert cli.main(["--gt", gt_path, "--results", results_path, "--backend", "reference",
                     "-v", "-q"]) == 0  # fmt: skip
    err = capsys.readouterr().err.splitlines()
    assert any(line.startswith("info: ") and "ground truth" in line for line in err)
    assert any(line.startswith("info: ") and "'reference' backend" in line for line in err)
    assert sum(line.startswith("warning: ") for line in err) == 1
    assert (package.level, root.level, list(root.handlers)) == before


def test_unwritable_json_output_exits_2(files, tmp_path, capsys):
    gt_path, results_path, _ = files
    out = str(tmp_path / "no" / "such" / "dir" / "out.json")
    argv = ["--gt", gt_path, "--results", results_path, "--json", out, "--backend", "reference"]
    assert cli.main(argv) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: cannot write") and "out.json" in line


@pytest.mark.parametrize(
    "argv",
    [
        ["--gt", "gt.json"],
        ["--results", "results.json"],
        ["--demo", "--gt", "gt.json", "--results", "r.json"],
        ["--backend", "torch"],
        ["--no-such-option"],
        ["--metrics", "ap,hotta"],
        ["--metrics", ","],
        ["--score-threshold", "0.5"],  # without a tracking metric
        ["--metrics", "hota", "--score-threshold", "nan"],
    ],
)
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    assert "usage:" in capsys.readouterr().err


@pytest.mark.parametrize("threshold", [None, "0.5"])
def test_tracking_metrics_in_text_json_and_plots(files, tmp_path, capsys, threshold):
    """--metrics ap,hota,clear,identity: the AP output unchanged, then one table per family;
    --json 'tracking' equals the API's; tracking.png beside the AP pictures."""
    pytest.importorskip("matplotlib")
    gt_path, results_path, json_path = files
    extra = ["--score-threshold", threshold] if threshold else []
    argv = ["--gt", gt_path, "--results", results_path, "--json", json_path]
    argv += ["--metrics", "ap,hota,clear,identity", "--plots", str(tmp_path / "p"), *extra]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    options = {"score_threshold": float(threshold) if threshold else None}
    result = ovis_jax.evaluate(
        gt_path,
        results_path,
        metrics="hota,clear,identity",
        metric_options={m: options for m in ("hota", "clear", "identity")},
    )
    assert out.startswith(ovis_jax.format_summary(result))
    tracking = result.metrics["tracking"]
    assert out.endswith(tracking.format_text())
    for family in ("HOTA", "CLEAR", "IDENTITY"):
        assert f"{family} (fractions" in out
    document = json.loads(open(json_path).read())
    assert document["tracking"] == json.loads(json.dumps(tracking.to_json()))
    assert document["tracking"]["score_threshold"] == options["score_threshold"]
    assert sorted(os.listdir(tmp_path / "p")) == [
        "per_category.png",
        "pr_curve.png",
        "tracking.png",
    ]


def test_no_arguments_evaluates_the_demo_with_the_auto_backend(monkeypatch, capsys):
    calls = []

    def evaluate(gt, results, *, backend, **options):
        calls.append(backend)
        return ovis_jax.evaluate(gt, results, backend="reference", **options)

    monkeypatch.setattr(cli, "evaluate", evaluate)
    monkeypatch.setattr(cli, "resolve_backend", lambda backend, gt, results: f"<{backend}>")
    assert cli.main([]) == 0
    assert calls == ["<auto>"]
    out = capsys.readouterr().out.splitlines()
    assert len(parse_summary(out[:18])) == 18


def test_demo_missing_is_an_error(monkeypatch, capsys):
    monkeypatch.setattr(cli, "DEMO_GT", "no_such_demo.json")
    assert cli.main(["--demo"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: ") and "no_such_demo.json" in line


def test_cpu_backend_does_not_import_jax():
    """The CPU path must not pay for JAX's import (about a second) or initialise its runtime."""
    code = (
        "import sys; from ovis_jax._src.cli.eval import main; "
        "rc = main(['--backend', 'cpu', '-q']); print(rc, 'jax' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.stdout.split() == ["0", "False"], proc.stdout + proc.stderr


@pytest.mark.slow
def test_second_cli_run_compiles_nothing(tmp_path):
    """numba's on-disk cache: the first process compiles the kernels, the second loads them."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba"), "NUMBA_DEBUG_CACHE": "1"}
    cmd = [sys.executable, "-m", "ovis_jax.eval", "--backend", "cpu", "-q"]
    runs = [subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)]
    runs.append(subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900))
    assert [r.returncode for r in runs] == [0, 0], runs[1].stderr
    assert "data saved" in runs[0].stdout + runs[0].stderr  # compiled and cached
    second = runs[1].stdout + runs[1].stderr
    assert "data saved" not in second and "data loaded" in second


@pytest.mark.slow
def test_unprintable_category_name_is_escaped(tmp_path, tiny):
    """A lone surrogate (valid JSON, not encodable) in a category name: printed escaped."""
    gt, results = tiny
    gt["categories"][0]["name"] = "\ud800cat"
    gt_path, res_path = tmp_path / "gt.json", tmp_path / "res.json"
    gt_path.write_text(json.dumps(gt))  # ensure_ascii: written as the escape \ud800
    res_path.write_text(json.dumps(results))
    out = tmp_path / "out.json"
    proc = run_cli("--gt", str(gt_path), "--results", str(res_path), "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "\\ud800cat" in proc.stdout
    assert json.loads(out.read_text())["per_category"][0]["name"] == "\ud800cat"
    assert not list(tmp_path.glob("*.tmp-*"))  # the atomic write left no temporary file
