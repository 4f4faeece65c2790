"""What every command line of simsgd shares: one-line errors, exit codes, checked output folders.

Every CLI (``python -m simsgd.counterexample``, ``python -m bounds``, ``python -m figures``,
the studies, the examples) is written as ``main(argv) -> int`` and run through
:func:`run`, which maps every failure to one line on stderr:

- exit 2: bad arguments (:class:`UsageError`, argparse's own errors, or a ``ValueError``
  raised inside :func:`usage_errors` while the arguments are checked, before any computation);
- exit 1: a failure at run time (any other exception), with nothing half-written;
- exit 130: interrupted.

``--quick`` changes defaults only (:func:`parse_with_quick`): an option the user gives wins
and is checked by its argparse ``type`` like any other.

Output is written as a set (:func:`output_set`): the files are made in a staging folder
beside the target and moved in only when all of them were written, so a failure leaves
the previous set as it was. :func:`check_out_dir` is called before the computation: it
creates the folder, writes and removes a probe file, so an unwritable ``--out`` is a usage
error in the first second, not a traceback after the whole run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator

from . import backends
from ._checks import check_int, check_real, check_seed

__all__ = [
    "UsageError",
    "Parser",
    "integer",
    "real",
    "seed",
    "usage_errors",
    "run",
    "check_out_dir",
    "output_set",
    "add_engine_arguments",
    "engine",
    "engine_flags",
    "given_options",
    "parse_with_quick",
]


class UsageError(ValueError):
    """A bad command-line argument; :func:`run` prints it as one line and exits with 2."""


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line and exit status 2."""

    def error(self, message):  # noqa: D102 - argparse's hook
        self.exit(2, f"{self.prog}: error: {message}\n")


def given_options(parser: argparse.ArgumentParser, argv: list[str] | None) -> frozenset:
    """The ``dest`` of every option named in ``argv``, whatever its value (the default's too).

    Parse ``argv`` with ``parser`` first: this parses it again into a namespace whose every
    attribute is a sentinel that argparse leaves alone unless the option is given.
    """
    unset = object()
    probe = argparse.Namespace(
        **{a.dest: unset for a in parser._actions if a.default is not argparse.SUPPRESS}
    )
    parser.parse_args(argv, namespace=probe)
    return frozenset(dest for dest, value in vars(probe).items() if value is not unset)


def parse_with_quick(
    parser: argparse.ArgumentParser, argv: list[str] | None, quick: dict
) -> argparse.Namespace:
    """Parse ``argv``; with ``--quick``, each option of ``quick`` (dest -> value) that ``argv``
    does not give takes the quick value. An option given explicitly wins and has been
    checked by its argparse ``type`` like any other.
    """
    args = parser.parse_args(argv)
    if args.quick:
        given = given_options(parser, argv)
        for dest, value in quick.items():
            if dest not in given:
                setattr(args, dest, value)
    return args


def _argument_type(kind: str, check: Callable[[str, object], object], name: str):
    """An argparse ``type`` that parses the text as ``kind`` and checks it with ``check(name, value)``.

    Its error is argparse's one line: ``argument --name: must be …, got …``.
    """

    def parse(text: str):
        try:
            value = int(text) if kind == "int" else float(text)
        except (ValueError, OverflowError):
            value = text  # the check names the type it wants
        try:
            return check(name, value)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err).removeprefix(f"{name} ")) from None

    parse.__name__ = kind  # argparse names the type in "invalid int value" messages
    return parse


def integer(name: str, low: int, high: int | None = None):
    """An argparse ``type``: an integer in ``[low, high]`` (see :func:`simsgd._checks.check_int`)."""
    return _argument_type("int", lambda n, v: check_int(n, v, low, high), name)


def real(
    name: str, low: float = -float("inf"), high: float = float("inf"), *, low_open=False, high_open=False
):
    """An argparse ``type``: a finite real number in the interval (see :func:`simsgd._checks.check_real`)."""
    return _argument_type(
        "float", lambda n, v: check_real(n, v, low, high, low_open=low_open, high_open=high_open), name
    )


def seed(name: str = "--seed"):
    """An argparse ``type``: a seed in [0, 2⁶⁴ − 1] (see :func:`simsgd._checks.check_seed`)."""
    return _argument_type("int", check_seed, name)


@contextlib.contextmanager
def usage_errors(option: str | None = None) -> Iterator[None]:
    """Turn a ``ValueError`` raised inside the block (checking arguments) into a :class:`UsageError`.

    With ``option``, the message is prefixed ``argument OPTION:`` like argparse's own.
    """
    try:
        yield
    except UsageError:
        raise
    except ValueError as err:
        prefix = f"argument {option}: " if option else ""
        raise UsageError(prefix + _one_line(err)) from None


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def run(
    main: Callable[[list[str] | None], int], argv: list[str] | None = None, prog: str | None = None
) -> int:
    """Run ``main(argv)`` and turn every failure into one stderr line and an exit status.

    Parameters
    ----------
    main : callable
        The CLI's ``main(argv) -> int``. It raises :class:`UsageError` for a bad argument
        (exit 2); anything else it raises is a run-time failure (exit 1).
    argv : list of str, optional
    prog : str, optional
        The name printed before the message (default ``sys.argv[0]``'s base name).

    Returns
    -------
    int
        The exit status (0, 1, 2 or 130).
    """
    prog = prog or os.path.basename(sys.argv[0] or "simsgd")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            status = int(main(argv) or 0)
        if caught:  # one line, not NumPy's two per warning
            more = f" (and {len(caught) - 1} more)" if len(caught) > 1 else ""
            print(f"{prog}: warning: {_one_line(caught[0].message)}{more}", file=sys.stderr)
        return status
    except SystemExit as exit_:  # argparse's own exit (help: 0; errors already printed: 2)
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 2)
    except UsageError as err:
        print(f"{prog}: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; nothing was written", file=sys.stderr)
        return 130
    except MemoryError:
        print(f"{prog}: failed: out of memory (use fewer --replicas or --steps)", file=sys.stderr)
        return 1
    except Exception as err:  # noqa: BLE001 - the CLI contract: one line, never a traceback
        print(f"{prog}: failed: {type(err).__name__}: {_one_line(err)}", file=sys.stderr)
        return 1


def check_out_dir(path: str | os.PathLike, option: str = "--out", names=()) -> str:
    """Make sure ``path`` is a folder this process can write into, before any computation.

    Creates it (and its parents) if missing, writes and removes a probe file.

    Parameters
    ----------
    path : str or path
    option : str
        The option named in the error.
    names : iterable of str
        The files the run will write there: none of them may be taken by a folder.

    Raises
    ------
    UsageError
        Naming ``option``, when the path is empty, is (or is below) a file, cannot be
        created or written, or one of ``names`` is a folder in it.
    """
    text = os.fspath(path)
    if not text:
        raise UsageError(f"argument {option}: must be a folder path, got ''")
    try:
        if os.path.exists(text) and not os.path.isdir(text):
            raise UsageError(f"argument {option}: must be a folder, got the file {text!r}")
        os.makedirs(text, exist_ok=True)
        if not os.path.isdir(text):
            raise UsageError(f"argument {option}: must be a folder, got the file {text!r}")
        fd, probe = tempfile.mkstemp(prefix=".probe-", dir=text)
        os.close(fd)
        os.unlink(probe)
    except UsageError:
        raise
    except (OSError, ValueError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise UsageError(f"argument {option}: cannot write into {text!r} ({reason})") from None
    for name in names:
        if os.path.isdir(os.path.join(text, name)):
            raise UsageError(
                f"argument {option}: {os.path.join(text, name)!r} is a folder; the run writes a file there"
            )
    return text


@contextlib.contextmanager
def output_set(target: str | os.PathLike) -> Iterator[str]:
    """Write a set of files all or nothing.

    Yields a staging folder beside ``target`` (inside it if the parent is not writable);
    write every file of the set there. When the block ends without an exception, each
    staged file is moved into ``target`` with :func:`os.replace` (atomic per file); on an
    exception nothing is moved and the staging folder is removed, so ``target`` keeps its
    previous set.

    Examples
    --------
    >>> with output_set(out_dir) as stage:                       # doctest: +SKIP
    ...     atomic_write_json(os.path.join(stage, "summary.json"), summary)
    """
    target = os.fspath(target)
    os.makedirs(target, exist_ok=True)
    parent = os.path.dirname(os.path.abspath(target))
    prefix = f".{os.path.basename(os.path.abspath(target))}.staging-"
    try:
        stage = tempfile.mkdtemp(prefix=prefix, dir=parent)
    except OSError:  # a parent we may not write into: stage inside the target (checked writable)
        stage = tempfile.mkdtemp(prefix=prefix, dir=target)
    try:
        yield stage
        names = sorted(os.listdir(stage))
        for name in names:
            dest = os.path.join(target, name)
            if os.path.isdir(dest) and not os.path.islink(dest):
                raise IsADirectoryError(f"{dest!r} is a folder; cannot replace it with a file")
        for name in names:
            os.replace(os.path.join(stage, name), os.path.join(target, name))
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """``--backend {numpy,torch}`` and ``--device``: where the command's simulations run."""
    parser.add_argument(
        "--backend",
        choices=backends.names(),
        default="numpy",
        help="array library of every simulation (torch: same draws, trajectories equal to rounding)",
    )
    parser.add_argument("--device", default="cpu", help="torch only: cpu, cuda or cuda:k (default cpu)")


def engine(args: argparse.Namespace):
    """The checked :func:`simsgd.engine.default_engine` of ``--backend``/``--device``.

    Call it before any computation: torch missing, a device that is not there, or
    ``--device`` without ``--backend torch`` is a :class:`UsageError`.
    """
    from .engine import default_engine

    if args.backend == "numpy" and args.device != "cpu":
        raise UsageError(f"argument --device: {args.device!r} needs --backend torch")
    with usage_errors("--backend" if args.device == "cpu" else "--device"):
        return default_engine(args.backend, args.device)


def engine_flags(args: argparse.Namespace) -> str:
    """``--backend``/``--device`` as they would be typed, "" for the default (NumPy), for
    the commands that outputs quote.
    """
    return "" if args.backend == "numpy" else f" --backend {args.backend} --device {args.device}"
