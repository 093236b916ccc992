"""The files a command writes, all or none, never over one of its inputs.

Every command builds one :class:`OutputPlan`: it *declares* its inputs and every file it will
write (before any work), *checks* them when the plan is entered (an output that is the same
file as an input or as another output, a missing folder, a folder in the way or an unwritable
place is a :class:`~ovis_jax._src.cli.guard.CliError` before anything is read), writes each
output to a temporary file of its own in the target folder (unique per call, created by
:func:`tempfile.mkstemp`), and *commits*: renames them all over their targets at the end and
reports each as ``wrote PATH`` on stderr. A run that fails, is interrupted (SIGINT) or
terminated (SIGTERM, see :func:`~ovis_jax._src.cli.guard.run_guarded`) leaves no new file:
leaving the plan without a commit removes the temporary files (and a folder the plan created).

    plan = OutputPlan(quiet=args.quiet)
    plan.input("--results", args.results)
    plan.output("--json", args.json_out)
    with plan:                                   # checks; temporary files exist from here
        ...                                      # the work
        plan.write("--json", lambda tmp: write_json(tmp, doc))
        plan.commit()                            # renames, then "wrote PATH" lines
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import stat
import sys
from collections.abc import Callable

from ovis_jax._src.cli.guard import CliError
from ovis_jax._src.tempfiles import temp_beside

__all__ = ["OutputPlan", "same_file"]


@dataclasses.dataclass(frozen=True)
class _Output:
    """One declared output: the option that names it and the user's path."""

    option: str
    path: str


def same_file(a: str, b: str) -> bool:
    """Whether two paths name the same file: equal after resolving symlinks, or
    :func:`os.path.samefile` (hard links, bind mounts) when both exist."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def _reason(e: OSError) -> str:
    return e.strerror or str(e)


class OutputPlan:
    """The inputs and outputs of one command run (see the module docstring).

    Args:
        quiet: do not report ``wrote PATH`` lines.
    """

    def __init__(self, *, quiet: bool = False) -> None:
        self.quiet = quiet
        self._inputs: list[tuple[str, str]] = []
        self._outputs: list[_Output] = []
        self._temps: dict[str, str] = {}  # user's path -> temporary file
        self._made_dirs: list[str] = []
        self._committed = False

    # ---------------------------------------------------------------------------------- declare

    def input(self, option: str, path: str | os.PathLike | None) -> None:
        """Declares an input file (None: not given)."""
        if path is not None:
            self._inputs.append((option, os.fspath(path)))

    def output(self, option: str, path: str | os.PathLike | None) -> None:
        """Declares an output file (None: not asked for)."""
        if path is not None:
            self._outputs.append(_Output(option, os.fspath(path)))

    @property
    def outputs(self) -> list[str]:
        """The declared output paths, in declaration order."""
        return [o.path for o in self._outputs]

    # ------------------------------------------------------------------------------------ check

    def __enter__(self) -> OutputPlan:
        try:
            self.check()
        except BaseException:
            self.discard()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if not self._committed:
            self.discard()

    def check(self) -> None:
        """Refuses an output that is an input or another output, then creates every output's
        temporary file (proving its folder exists and is writable).

        Raises:
            CliError: naming the option(s) and path(s).
        """
        for i, out in enumerate(self._outputs):
            for option, path in self._inputs:
                if same_file(out.path, path):
                    raise CliError(
                        f"{out.option} {out.path!r} is the same file as the input {option} "
                        f"{path!r}: refusing to overwrite an input (choose another output path)"
                    )
            for other in self._outputs[:i]:
                if same_file(out.path, other.path):
                    raise CliError(
                        f"{out.option} {out.path!r} and {other.option} {other.path!r} are the "
                        "same file: give each output its own path"
                    )
        for out in self._outputs:
            self._temps[out.path] = self._make_temp(out)

    def _make_temp(self, out: _Output) -> str:
        if os.path.isdir(out.path):
            raise CliError(f"cannot write {out.path!r} ({out.option}: it is a folder)")
        folder = os.path.dirname(os.path.abspath(out.path))
        try:
            is_dir = stat.S_ISDIR(os.stat(folder).st_mode)
        except FileNotFoundError:
            raise CliError(
                f"cannot write {out.path!r} ({out.option}: folder {folder!r} does not exist)"
            ) from None
        except OSError as e:  # e.g. a folder on the way that this user cannot enter
            raise CliError(f"cannot write {out.path!r} ({out.option}: {_reason(e)})") from None
        if not is_dir:
            raise CliError(f"cannot write {out.path!r} ({out.option}: {folder!r} is a file)")
        name = os.path.basename(out.path)
        try:
            fd, temp = temp_beside(os.path.join(folder, name))
        except OSError as e:
            raise CliError(f"cannot write {out.path!r} ({out.option}: {_reason(e)})") from None
        os.close(fd)
        return temp

    def make_folder(self, option: str, folder: str) -> None:
        """Creates ``folder`` (one level) if it does not exist, before :meth:`check`; a plan
        that is not committed removes it again (when empty).

        Raises:
            CliError: it cannot be created.
        """
        if os.path.isdir(folder):
            return
        try:
            os.mkdir(folder)
        except OSError as e:
            why = _reason(e)
            raise CliError(f"cannot write {folder!r} ({option}: cannot create it: {why})") from None
        self._made_dirs.append(folder)

    # ------------------------------------------------------------------------------------ write

    def temp(self, path: str) -> str:
        """The temporary file to write for the declared output ``path``."""
        return self._temps[os.fspath(path)]

    def write(self, path: str, writer: Callable[[str], object]) -> None:
        """Calls ``writer(temporary_path)`` for the declared output ``path``.

        Raises:
            CliError: ``cannot write PATH (reason)`` naming the option, on an OSError.
        """
        out = next(o for o in self._outputs if o.path == os.fspath(path))
        try:
            writer(self.temp(out.path))
        except OSError as e:
            raise CliError(f"cannot write {out.path!r} ({out.option}: {_reason(e)})") from None

    # ----------------------------------------------------------------------------------- commit

    def commit(self) -> list[str]:
        """Renames every temporary file over its target and reports ``wrote PATH`` on stderr
        (unless quiet).

        Returns:
            The paths written.

        Raises:
            CliError: a rename failed (the outputs not yet renamed are removed).
        """
        written = []
        for out in self._outputs:
            try:
                os.replace(self._temps[out.path], out.path)
            except OSError as e:
                raise CliError(f"cannot write {out.path!r} ({out.option}: {_reason(e)})") from None
            del self._temps[out.path]
            written.append(out.path)
        self._committed = True
        if not self.quiet:
            for path in written:
                print(f"wrote {path}", file=sys.stderr)
        return written

    def discard(self) -> None:
        """Removes the temporary files (and the folders this plan created, when empty)."""
        for temp in self._temps.values():
            with contextlib.suppress(OSError):
                os.remove(temp)
        self._temps.clear()
        for folder in reversed(self._made_dirs):
            with contextlib.suppress(OSError):
                os.rmdir(folder)
        self._made_dirs.clear()
