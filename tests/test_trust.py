"""Issue 17 §1-3: never destroy an input, run in any environment, MemoryError as one line.

Every command (eval, check, pack, split, synth) refuses an output that is one of its inputs
before any work, checks every output's folder before any work, writes all its outputs or none
(no temporary file left on failure, SIGINT or SIGTERM), says ``cannot write PATH (OPTION: ...)``
and reports each file written. numba's and XLA's caches are optional: no writable HOME, an
unwritable or full cache, corrupt cache entries all give the same numbers.
"""

from __future__ import annotations

import errno
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import threading
from pathlib import Path

import numba
import numpy as np
import pytest

import ovis_jax
from ovis_jax._src.backends.cpu import startup
from ovis_jax._src.backends.jax import cache as xla_cache
from ovis_jax._src.cli import commands, guard, outputs
from ovis_jax._src.cli import eval as cli
from ovis_jax._src.metrics.matches import write_matches
from ovis_jax.testing import synthetic

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def files(tmp_path, tiny):
    gt, results = tiny
    gt_path, res_path = tmp_path / "gt.json", tmp_path / "res.json"
    gt_path.write_text(json.dumps(gt))
    res_path.write_text(json.dumps(results))
    return gt_path, res_path


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _one_error(capsys) -> str:
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def _eval(gt, res, *extra) -> int:
    return cli.main(["--gt", str(gt), "--results", str(res), "--backend", "cpu", "-q", *extra])


# --------------------------------------------------------------------------------------------
# 1. Never destroy an input


@pytest.mark.parametrize(
    ("option", "target"),
    [("--json", "res"), ("--matches", "gt"), ("--arrays", "res"), ("--json", "gt")],
)
def test_eval_refuses_an_output_that_is_an_input(files, capsys, option, target):
    gt, res = files
    before = _snapshot(gt.parent)
    path = {"gt": gt, "res": res}[target]
    assert _eval(gt, res, option, str(path)) == 2
    line = _one_error(capsys)
    assert option in line and str(path) in line and "same file" in line
    assert _snapshot(gt.parent) == before


@pytest.mark.parametrize("how", ["symlink", "hardlink", "dotted", "relative"])
def test_same_file_by_another_name(files, capsys, monkeypatch, how):
    gt, res = files
    before = res.read_bytes()
    other = gt.parent / "other.json"
    if how == "symlink":
        other.symlink_to(res)
    elif how == "hardlink":
        os.link(res, other)
    elif how == "dotted":
        other = gt.parent / "." / ".." / gt.parent.name / "res.json"
    else:
        monkeypatch.chdir(gt.parent)
        other = Path("res.json")
    assert _eval(gt, res, "--json", str(other)) == 2
    assert "same file" in _one_error(capsys)
    assert res.read_bytes() == before


def test_plots_folder_holding_an_input(files, capsys):
    gt, res = files
    assert _eval(gt, res, "--plots", str(gt.parent)) == 0 or True  # matplotlib may be absent
    capsys.readouterr()
    (gt.parent / "pr_curve.png").unlink(missing_ok=True)
    shutil.copy(res, gt.parent / "pr_curve.png")
    before = _snapshot(gt.parent)
    res2 = gt.parent / "pr_curve.png"
    assert _eval(gt, res2, "--plots", str(gt.parent)) == 2
    assert "same file" in _one_error(capsys)
    assert _snapshot(gt.parent) == before


def test_two_outputs_on_one_file(files, capsys, tmp_path):
    gt, res = files
    out = tmp_path / "out.json"
    assert _eval(gt, res, "--json", str(out), "--matches", str(out)) == 2
    assert "same file" in _one_error(capsys)
    assert not out.exists()


def test_pack_and_split_refuse_their_input(tmp_path, capsys):
    gt, results = synthetic.random_dataset(seed=3, num_videos=12)
    g, r = tmp_path / "train_sub.json", tmp_path / "r.json"
    g.write_text(json.dumps(gt))
    r.write_text(json.dumps(results))
    before = _snapshot(tmp_path)
    assert commands.pack_main(["--results", str(r), "--gt", str(g), "--out", str(g)]) == 2
    assert "same file" in _one_error(capsys)
    assert commands.pack_main(["--results", str(r), "--out", str(r)]) == 2
    assert "same file" in _one_error(capsys)
    assert commands.split_main(["--gt", str(g), "--out", str(tmp_path)]) == 2
    assert "same file" in _one_error(capsys)
    assert _snapshot(tmp_path) == before


def test_missing_folder_is_an_error_before_the_run(files, capsys, monkeypatch):
    gt, res = files
    ran = []
    monkeypatch.setattr(cli, "load_ground_truth", lambda *a, **k: ran.append(1))
    ok = gt.parent / "ok.json"
    bad = gt.parent / "nodir" / "m.jsonl"
    assert _eval(gt, res, "--json", str(ok), "--matches", str(bad)) == 2
    line = _one_error(capsys)
    assert line.startswith("error: cannot write") and "--matches" in line and "nodir" in line
    assert not ran and not ok.exists()
    assert sorted(p.name for p in gt.parent.iterdir()) == ["gt.json", "res.json"]


def test_output_under_a_file_and_output_a_folder(files, capsys):
    gt, res = files
    assert _eval(gt, res, "--json", str(gt / "x.json")) == 2
    assert "cannot write" in _one_error(capsys)
    assert _eval(gt, res, "--json", str(gt.parent)) == 2
    assert "folder" in _one_error(capsys)


def test_a_failed_write_leaves_nothing(files, capsys, monkeypatch):
    gt, res = files
    from ovis_jax._src.metrics import matches

    def full(m, path):
        Path(path).write_text("partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(matches, "write_matches", full)
    before = _snapshot(gt.parent)
    out, m = gt.parent / "out.json", gt.parent / "m.jsonl"
    assert _eval(gt, res, "--json", str(out), "--matches", str(m)) == 2
    line = _one_error(capsys)
    assert line == f"error: cannot write {str(m)!r} (--matches: No space left on device)"
    assert _snapshot(gt.parent) == before  # neither file, no temporary file


@pytest.mark.parametrize("exc", [KeyboardInterrupt, guard.Terminated])
def test_interrupt_removes_temporary_files(files, capsys, monkeypatch, exc):
    gt, res = files

    def interrupted(*a, **k):
        raise exc

    monkeypatch.setattr(cli, "evaluate", interrupted)
    before = _snapshot(gt.parent)
    assert _eval(gt, res, "--json", str(gt.parent / "o.json")) in (130, 143)
    assert _snapshot(gt.parent) == before


def test_sigterm_in_a_real_process_removes_temporary_files(files):
    gt, res = files
    code = textwrap.dedent(f"""
        import os, signal, sys
        from ovis_jax._src.cli import eval as cli
        def slow(*a, **k):
            os.kill(os.getpid(), signal.SIGTERM)
            raise AssertionError("not terminated")
        cli.evaluate = slow
        sys.exit(cli.main(["--gt", {str(gt)!r}, "--results", {str(res)!r}, "--json",
                           {str(gt.parent / "o.json")!r}, "--backend", "cpu"]))
    """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 143, p.stderr
    assert p.stderr.splitlines() == ["error: terminated"]
    assert sorted(x.name for x in gt.parent.iterdir()) == ["gt.json", "res.json"]


def test_wrote_lines_and_quiet(files, capfd):
    gt, res = files
    out, m = gt.parent / "out.json", gt.parent / "m.jsonl"
    argv = ["--gt", str(gt), "--results", str(res), "--json", str(out), "--matches", str(m)]
    assert cli.main([*argv, "--backend", "cpu"]) == 0
    err = capfd.readouterr().err.splitlines()
    assert [e for e in err if e.startswith("wrote")] == [f"wrote {out}", f"wrote {m}"]
    assert cli.main([*argv, "--backend", "cpu", "-q"]) == 0
    assert not [e for e in capfd.readouterr().err.splitlines() if e.startswith("wrote")]


def test_split_both_or_neither(tmp_path, capsys, monkeypatch):
    gt, _ = synthetic.random_dataset(seed=3, num_videos=12)
    g = tmp_path / "gt.json"
    g.write_text(json.dumps(gt))
    calls = []

    def second_fails(path, text):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        Path(path).write_text(text)

    monkeypatch.setattr(commands, "_write_text", second_fails)
    out = tmp_path / "out"
    assert commands.split_main(["--gt", str(g), "--out", str(out), "--fraction", "0.3"]) == 2
    line = _one_error(capsys)
    assert "cannot write" in line and "--out" in line and "No space left" in line
    assert not out.exists()  # the folder it created is gone again, and both files


def test_split_seed_and_out_file_messages(tmp_path, capsys):
    g = tmp_path / "gt.json"
    g.write_text(json.dumps(synthetic.random_dataset(seed=3, num_videos=12)[0]))
    assert commands.split_main(["--gt", str(g), "--out", str(tmp_path / "o"), "--seed", "-1"]) == 2
    assert "--seed" in _one_error(capsys)
    assert commands.split_main(["--gt", str(g), "--out", str(g)]) == 2
    line = _one_error(capsys)
    assert line.startswith(f"error: cannot write {str(g)!r}") and "--out" in line


def test_write_matches_is_safe_from_two_threads(files, tmp_path):
    gt, res = files
    result = ovis_jax.evaluate(str(gt), str(res), backend="cpu", matches=True)
    path = tmp_path / "m.jsonl"
    threads = [
        threading.Thread(target=write_matches, args=(result.matches, path)) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = path.read_text().splitlines()
    assert len(lines) == result.matches.result.shape[0]
    assert all(json.loads(x) for x in lines)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "gt.json") == [
        "m.jsonl",
        "res.json",
    ]


def test_output_plan_unit(tmp_path):
    a = tmp_path / "a"
    a.write_text("input")
    plan = outputs.OutputPlan(quiet=True)
    plan.input("--in", a)
    plan.output("--out", tmp_path / "b")
    with plan:
        plan.write(str(tmp_path / "b"), lambda tmp: Path(tmp).write_text("x"))
        assert len(list(tmp_path.iterdir())) == 2  # a and the temporary file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]  # not committed: nothing
    with outputs.OutputPlan(quiet=True) as plan2:
        assert plan2.commit() == []


# --------------------------------------------------------------------------------------------
# 3. MemoryError anywhere: one line, exit 2


@pytest.mark.parametrize("command", ["eval", "check", "pack", "split"])
def test_memory_error_is_one_line(tmp_path, capsys, monkeypatch, command, tiny):
    gt, results = synthetic.random_dataset(seed=3, num_videos=12)
    g, r = tmp_path / "gt.json", tmp_path / "r.json"
    g.write_text(json.dumps(gt))
    r.write_text(json.dumps(results))

    def boom(*a, **k):
        raise MemoryError

    out = str(tmp_path / "o")
    if command == "eval":
        monkeypatch.setattr(cli, "load_results", boom)
        status = _eval(g, r)
    elif command == "check":
        monkeypatch.setattr(commands, "check_results", boom)
        status = commands.check_main(["--gt", str(g), "--results", str(r)])
    elif command == "pack":
        monkeypatch.setattr(commands, "pack_results", boom)
        status = commands.pack_main(["--results", str(r), "--out", out + ".zip"])
    else:
        monkeypatch.setattr(commands, "split_ground_truth", boom)
        status = commands.split_main(["--gt", str(g), "--out", out])
    assert status == 2
    assert "out of memory" in _one_error(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gt.json", "r.json"]


# --------------------------------------------------------------------------------------------
# Progress never goes backwards (issue 18 §4)


def test_progress_bar_never_goes_backwards(files):
    gt, res = files
    stream = io.StringIO()
    bar = guard.ProgressBar(stream)
    log = logging.getLogger("ovis_jax")
    saved = log.level
    log.addHandler(bar)
    log.setLevel(logging.INFO)
    try:
        for backend in ("cpu", "reference"):
            g = ovis_jax.load_ground_truth(str(gt))
            ovis_jax.evaluate(g, ovis_jax.load_results(str(res), g), backend=backend)
    finally:
        log.removeHandler(bar)
        log.setLevel(saved)
    shown = [
        tuple(int(x) for x in part.split("] ")[1].split(" ")[0].split("/"))
        for part in stream.getvalue().replace("\n", "\r").split("\r")
        if "] " in part
    ]
    assert shown, stream.getvalue()
    runs, run = [], []
    for s in shown:
        run.append(s[0])
        if s[0] == s[1]:
            runs.append(run)
            run = []
    assert len(runs) == 2
    for r in runs:
        assert r == sorted(r), r


# --------------------------------------------------------------------------------------------
# 2. Run in any environment


def _nobody_python() -> list[str] | None:
    """A command that runs this interpreter's version as user nobody, with this checkout and
    its site-packages importable; None where that cannot be done."""
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        return None
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for exe in (sys.executable, os.path.realpath(sys.executable), f"/usr/bin/{version}"):
        cmd = ["runuser", "-u", "nobody", "--", exe, "-c", "import sys"]
        try:
            if subprocess.run(cmd, capture_output=True, timeout=30).returncode == 0:
                return ["runuser", "-u", "nobody", "--", "env", "-u", "HOME", exe]
        except (OSError, subprocess.TimeoutExpired):
            continue
    return None


def _nobody_env(extra: dict | None = None) -> dict:
    paths = [str(REPO), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_", "OVIS_JAX"))}
    env.pop("HOME", None)
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env.update(extra or {})
    return env


DEMO_AP = None


def _demo_stats() -> dict:
    global DEMO_AP
    if DEMO_AP is None:
        data = Path(ovis_jax.__file__).parent / "data"
        DEMO_AP = ovis_jax.evaluate(
            str(data / "demo_gt.json"), str(data / "demo_results.json"), backend="cpu"
        ).stats
    return DEMO_AP


def _run_as_nobody(tmp_path, home: str | None, extra: dict | None = None):
    base = _nobody_python()
    if base is None:
        pytest.skip("needs root and runuser, and an interpreter user nobody can run")
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="ovis-jax-nobody-"))  # tmp_path: root's, mode 700
    os.chmod(folder, 0o777)
    out = folder / "out.json"
    cmd = [*base[:-1]]
    if home is not None:
        cmd += [f"HOME={home}"]
    cmd += [base[-1], "-m", "ovis_jax.eval", "--demo", "-q", "--json", str(out)]
    p = subprocess.run(
        cmd, env=_nobody_env(extra), capture_output=True, text=True, timeout=600, cwd="/"
    )
    assert p.returncode == 0, p.stderr
    warnings = [x for x in p.stderr.splitlines() if x.startswith("warning:")]
    assert len(warnings) <= 1, p.stderr
    assert "Traceback" not in p.stderr
    assert json.loads(out.read_text())["stats"] == pytest.approx(_demo_stats(), abs=1e-12)
    shutil.rmtree(folder)
    return p


@pytest.mark.parametrize("home", [None, "/", "/nonexistent"])
def test_runs_as_nobody_without_a_writable_home(tmp_path, home):
    _run_as_nobody(tmp_path, home)


@pytest.mark.slow
def test_runs_as_nobody_with_nothing_writable(tmp_path):
    """No package __pycache__, no HOME, a temporary folder nobody cannot write: no cache at all,
    one warning, the same numbers."""
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="ovis-jax-tmpdir-"))
    os.chmod(tmp, 0o777)  # a usable TMPDIR, but its ovis_jax cache folder is root's
    (tmp / "ovis_jax-numba-cache-65534").mkdir(mode=0o755)
    try:
        p = _run_as_nobody(tmp_path, "/nonexistent", {"TMPDIR": str(tmp)})
    finally:
        shutil.rmtree(tmp)
    assert "warning: cannot write numba's cache" in p.stderr


def test_default_xla_cache_without_home(monkeypatch):
    monkeypatch.delenv("OVIS_JAX_CACHE", raising=False)
    for home in ("/", ""):
        monkeypatch.setenv("HOME", home)
        assert xla_cache.default_cache_dir().startswith(xla_cache.tempfile.gettempdir())


def test_unwritable_xla_cache_falls_back(tmp_path, monkeypatch, caplog):
    import jax

    saved = jax.config.jax_compilation_cache_dir
    a_file = tmp_path / "f"
    a_file.write_text("")
    try:
        monkeypatch.setattr(xla_cache, "_fallback_dir", lambda: str(tmp_path / "fallback"))
        assert xla_cache.enable_compilation_cache(str(a_file / "xla")) == str(tmp_path / "fallback")
        monkeypatch.setattr(xla_cache, "_fallback_dir", lambda: str(a_file / "fallback"))
        with caplog.at_level(logging.WARNING, logger="ovis_jax"):
            assert xla_cache.enable_compilation_cache(str(a_file / "xla")) is None
        assert len(caplog.records) == 1 and "compiling without a cache" in caplog.text
    finally:
        jax.config.update("jax_compilation_cache_dir", saved)


# numba's cache: corrupt entries are rebuilt, a full disk is skipped with one warning. A small
# kernel of "ovis_jax" (its __module__) stands for the package's kernels.

_KERNEL_SOURCE = """
import numba
def make():
    def kernel(x):
        return x * 2 + 1
    kernel.__module__ = "ovis_jax._test_kernel"
    return numba.njit(cache=True)(kernel)
"""


def _kernel_module(folder: Path):
    import importlib.util

    src = folder / "ovis_jax_test_kernel.py"
    if not src.exists():
        src.write_text(_KERNEL_SOURCE)
    spec = importlib.util.spec_from_file_location(f"k{abs(hash(str(folder)))}", src)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("damage", ["truncate_index", "garbage_index", "empty_data", "flip_data"])
def test_corrupt_numba_cache_is_rebuilt(tmp_path, damage):
    startup.prepare_numba()
    module = _kernel_module(tmp_path)
    assert module.make()(20) == 41  # compiled and saved
    cache = tmp_path / "__pycache__"
    index = next(cache.glob("*.nbi"))
    data = next(cache.glob("*.nbc"))
    if damage == "truncate_index":
        index.write_bytes(index.read_bytes()[: len(index.read_bytes()) // 2])
    elif damage == "garbage_index":
        index.write_bytes(b"\x80\x04garbage" * 3)
    elif damage == "empty_data":
        data.write_bytes(b"")
    else:
        raw = bytearray(data.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        raw[10] ^= 0xFF
        data.write_bytes(bytes(raw))
    assert module.make()(20) == 41  # ignored, compiled again, saved anew
    assert module.make()(21) == 43  # the rebuilt entry loads
    assert len(list(cache.glob("*.nbi"))) == 1


def test_full_disk_for_numba_cache_is_one_warning(tmp_path, monkeypatch, caplog):
    from numba.core import caching

    startup.prepare_numba()
    monkeypatch.setattr(startup, "_warned", False)

    def full(self, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(caching.IndexDataCacheFile, "_open_for_write", full)
    module = _kernel_module(tmp_path)
    with caplog.at_level(logging.WARNING, logger="ovis_jax"):
        assert module.make()(1) == 3
        assert _kernel_module(tmp_path).make()(2.5) == 6.0
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "No space left on device" in warnings[0].getMessage()


def test_numba_cache_dir_unwritable_falls_back(tmp_path):
    """$NUMBA_CACHE_DIR under a file (unwritable even for root): numba's own locators are
    skipped and the kernels still load, in a fresh process."""
    a_file = tmp_path / "f"
    a_file.write_text("")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(a_file / "numba"))
    code = (
        "import ovis_jax; data = ovis_jax.testing.random_dataset(seed=1); "
        "print(ovis_jax.evaluate(*data, backend='cpu').stats['AP'])"
    )
    p = subprocess.run(
        [sys.executable, "-c", "import ovis_jax.testing\n" + code],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode == 0, p.stderr
    want = ovis_jax.evaluate(*synthetic.random_dataset(seed=1), backend="cpu").stats["AP"]
    assert float(p.stdout) == want
    assert np.isfinite(want) and numba.__version__


def test_outputs_get_an_ordinary_files_mode(tmp_path, tiny):
    """Outputs go through a private temporary file (mode 0600) and a rename; the file the user
    gets has the mode a new file would (0666 without the umask), so others can read it."""
    gt, results = tiny
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "res.json").write_text(json.dumps(results))
    old = os.umask(0o022)
    try:
        argv = ["--gt", str(tmp_path / "gt.json"), "--results", str(tmp_path / "res.json"), "-q"]
        for opt, name in (("--json", "o.json"), ("--matches", "m.jsonl"), ("--arrays", "a.npz")):
            argv += [opt, str(tmp_path / name)]
        assert cli.main(argv) == 0
        for name in ("o.json", "m.jsonl", "a.npz"):
            assert (tmp_path / name).stat().st_mode & 0o777 == 0o644, name
    finally:
        os.umask(old)


def test_pack_and_split_outputs_are_readable_by_others(tmp_path, tiny):
    gt, results = tiny
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "res.json").write_text(json.dumps(results))
    old = os.umask(0o022)
    try:
        out = str(tmp_path / "sub.zip")
        assert commands.pack_main(["--results", str(tmp_path / "res.json"), "--out", out]) == 0
        assert os.stat(out).st_mode & 0o777 == 0o644
    finally:
        os.umask(old)
