"""What a benchmark ran on: the machine, the versions, the code (commit, source hash, snapshot)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("jax", "jaxlib", "numpy", "numba", "pycocotools", "msgspec")


def git_commit() -> str:
    """Short HEAD, with ``-dirty`` when tracked files are modified."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        dirty = git("status", "--porcelain", "--untracked-files=no")
        return git("rev-parse", "--short", "HEAD") + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def source_hash(package_dir: Path) -> str:
    """A hash of the package's Python sources as they are now (to flag edits during a run)."""
    h = hashlib.sha256()
    for path in sorted(package_dir.rglob("*.py")):
        h.update(path.relative_to(package_dir).as_posix().encode())
        with contextlib.suppress(OSError):
            h.update(path.read_bytes())
    return h.hexdigest()[:12]


def _cpu_name() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _ram_gb() -> float:
    with contextlib.suppress(OSError), open("/proc/meminfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("MemTotal"):
                return int(line.split()[1]) / 1024 / 1024
    return float("nan")


def accelerator() -> str:
    """The GPUs ``nvidia-smi -L`` lists, or "none (CPU only)"."""
    if shutil.which("nvidia-smi"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
            if out.returncode == 0 and out.stdout.strip():
                return "; ".join(out.stdout.strip().splitlines())
    return "none (CPU only)"


def machine_info() -> dict[str, Any]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "ram_gb": _ram_gb(),
        "platform": platform.platform(),
        "accelerator": accelerator(),
        "jax_platforms": os.environ.get("JAX_PLATFORMS", "(unset)"),
        "versions": versions,
    }


def use_snapshot(rev: str) -> tuple[str, str]:
    """Extracts ``ovis_jax/`` at ``rev`` (``git archive``) to a temporary directory put first on
    the path of this process and its children: immune to edits made while the benchmark runs.
    ``rev == "worktree"`` copies the working tree's ``ovis_jax/`` as it is now instead.
    Returns (short sha, directory)."""
    if rev == "worktree":
        sha = f"{git_commit()} + the working tree's ovis_jax/ as copied at the start"
        tmp = tempfile.mkdtemp(prefix="bench-src-worktree-")
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(ROOT / "ovis_jax", Path(tmp) / "ovis_jax", ignore=ignore)
    else:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", rev],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        tmp = tempfile.mkdtemp(prefix=f"bench-src-{sha}-")
        archive = subprocess.run(
            ["git", "archive", "--format=tar", sha, "ovis_jax"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
    sys.path.insert(0, tmp)
    os.environ["PYTHONPATH"] = os.pathsep.join([tmp, *filter(None, [os.environ.get("PYTHONPATH")])])
    print(f"benchmarking ovis_jax at {sha} (snapshot in {tmp})", flush=True)
    return sha, tmp


def code_text(snapshot: str | None, start: str, end: str, hashes: set[str]) -> str:
    """The "Code:" line of the report."""
    text = (
        f"`ovis_jax` of `{snapshot}` (a snapshot first on PYTHONPATH; the working tree was at "
        f"`{start}`)"
        if snapshot
        else f"commit `{start}`"
    )
    if not snapshot and end != start:
        text += f" at the start, `{end}` at the end (**the tree changed during the run**)"
    if len(hashes) > 1:
        text += (
            f"; **the package source changed during the run** ({len(hashes)} versions: "
            f"{', '.join(sorted(hashes))}): some comparisons mix code versions"
        )
    elif hashes:
        text += f"; `ovis_jax/*.py` hash `{next(iter(hashes))}` throughout"
    return text
