"""Every CLI's entry point, fuzzed in-process with generated argv (issue 13).

Each CLI is one row of ``CLIS``: its ``main``, the options to generate (name -> strategy
of argument texts), the files a run writes into ``--out``, and an optional patch that
makes a valid run cheap (the figures pipeline, the studies' computations, the torch launcher,
the bandwidth benchmark's namespaces). The contract checked
for every generated argv: exit status 0, 1 or 2; no "Traceback" on stderr; at most one
line on stderr; the ``--out`` folder either holds the complete set or is as it was.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simsgd import cli

# ---------------------------------------------------------------- argument texts

_FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=64).map(repr)
_HUGE_INTS = st.integers(min_value=2**31, max_value=2**80).map(str)
_TEXT = st.sampled_from(["", "x", "nan", "-inf", "1e999", "0x10", "1_000", " 3 ", "--", "é", "2**64", "1,2"])
_JUNK = _FLOATS | _HUGE_INTS | _TEXT | st.integers(-(2**70), 2**70).map(str)


def small_int(low=-2, high=6):
    """Mostly small integers (cheap runs), sometimes anything."""
    return st.integers(low, high).map(str) | _JUNK


def real(*good):
    return st.sampled_from([repr(g) for g in good]) | _FLOATS | _TEXT


def choice(*names):
    return st.sampled_from(list(names)) | _TEXT


# ---------------------------------------------------------------- the table of CLIs


@dataclass
class Cli:
    module: str
    options: dict
    files: tuple = ()  # what a successful run with --out writes there (at least)
    fixed: tuple = ()  # always passed (first: generated options override them)
    flags: tuple = ()
    patch: object = None  # callable(monkeypatch) making a valid run cheap
    failures: tuple = ()  # the only run-time failures (exit 1) a run may end in; others are missed checks
    requires: tuple = ()
    source: str = ""  # the module defining ``main`` when it is not ``module`` (a package's __main__ …)
    main: object = field(default=None, repr=False)


def _cheap_figures(monkeypatch):
    from figures import figure1, sweeps

    def fake(names):
        def make(out_dir, setting):
            for name in names:
                (Path(out_dir) / name).write_text("x")
            return [Path(out_dir) / name for name in names]

        return make

    monkeypatch.setattr(figure1, "make", fake(("figure1.png", "figure1.csv")))
    monkeypatch.setattr(
        sweeps, "make", fake(("sweep.csv", "pareto.png", "heatmap_tau_rank.png", "floats_table.md"))
    )


def _no_launch(module):
    def patch(monkeypatch):
        import importlib

        def launch(*args, **kwargs):
            raise RuntimeError("no processes are launched under the fuzz test")

        monkeypatch.setattr(importlib.import_module(module), "launch", launch)

    return patch


def _as_simulate(steps, replicas, nodes=4, shape=(2, 2)):
    """What a real run checks first (:func:`simsgd.engine.simulate`): its memory, then its sizes."""
    from simsgd._checks import check_int, check_memory
    from simsgd.engine import memory_estimate

    check_int("steps", steps, 1)
    check_int("replicas", replicas, 1)
    check_memory("the run", memory_estimate(replicas, steps, nodes, shape), "fewer replicas or steps")


def _cheap_bounds(monkeypatch):
    import importlib

    from simsgd._checks import check_seed

    main = importlib.import_module("bounds.__main__")

    def run_all(mode, seed, jobs=1):
        check_seed("seed", seed)  # as the real runs do (simsgd.simulate's seed)
        return {"mode": mode}

    monkeypatch.setattr(main, "run_all", run_all)
    monkeypatch.setattr(main, "render", lambda record, command: "# fake\n\n**Summary.** fake\n")
    monkeypatch.setattr(main, "to_json_record", lambda record, command: dict(record, command=command))


def _cheap_bounds_search(monkeypatch):
    from bounds import search

    def fake(statement, examples, seed):
        return dict(statement=statement, examples=examples, seed=seed, ratio=0.5, instance={})

    monkeypatch.setattr(search, "search", fake)


def _fake_escape_cell(
    basis, sigma, nodes, steps, replicas, *, rank=1, shape=(2, 2), precision="float64", **options
):
    """What :func:`counterexamples.escape.cells.measure` returns, without a run."""
    from counterexamples.escape.cells import CRITERIA

    _as_simulate(steps, replicas, nodes, shape)
    row = dict(
        basis=basis, sigma=sigma, nodes=nodes, rank=rank, steps=steps, replicas=replicas, precision=precision
    )
    errors = dict(flagged_share=0.0, max_error_norm_sq=1.0, max_error_norm_sq_first_tenth=1.0)
    return dict(row, **{c: None for c in CRITERIA}, **errors)


def _cheap_escape(monkeypatch):
    from counterexamples.escape import escape_study as study

    monkeypatch.setattr(study, "measure", _fake_escape_cell)
    monkeypatch.setattr(study.implementations, "symmetry_table", lambda samples: [])
    monkeypatch.setattr(study, "escape_claim", lambda *args: {})
    monkeypatch.setattr(study, "plot", lambda cells, path: Path(path).write_text("x"))


def _cheap_remark2(monkeypatch):
    from counterexamples.remark2 import remark2

    def measure(problem, rank, lr, method, options, steps, replicas):
        _as_simulate(steps, replicas)
        return dict(
            final_band95=(0.0, 1.0),
            converged_wilson95=(0.0, 1.0),
            final_grad_norm_sq=0.5,
            converged=1,
            floats_per_step=4.0,
            floats_restart=8,
        )

    def cell(kind, options, lr, steps, replicas, **kwargs):
        _as_simulate(steps, replicas)
        return dict(
            kind=kind,
            lr=lr,
            steps=steps,
            replicas=replicas,
            freed_by_first_restart=1.0,
            first_move_quartiles=[11.0, 11.0, 11.0],
            converged=1,
            converged_wilson95=(0.0, 1.0),
            **{"below_1e-6": 0.5},
            final_grad_norm_sq=0.5,
            final_band95=(0.0, 1.0),
            inner_T_quantiles_10_50_90=[0.0, 0.0, 0.0],
        )

    monkeypatch.setattr(remark2, "measure", measure)
    monkeypatch.setattr(remark2.sweep, "cell", cell)
    monkeypatch.setattr(remark2, "r2_claim", lambda *args: {})


def _cheap_search(monkeypatch):
    """The whole study replaced by an instant one (its output set is still written)."""
    from counterexamples.search import search

    monkeypatch.setattr(search, "study", lambda plan, seed, independent: {"claims": {}})
    monkeypatch.setattr(search, "render", lambda summary: "x\n")


def _cheap_exact_check(monkeypatch):
    from types import SimpleNamespace

    from counterexamples.exact_check import exact_check

    def run_exact(sigma, nodes=3, steps=100, **kwargs):
        return SimpleNamespace(
            outcome="held",
            broken_at=None,
            broken_invariant=None,
            conclusion_broken_at=None,
            degenerate_steps=[],
            steps_run=steps,
            note=None,
            max_bits=1,
        )

    monkeypatch.setattr(exact_check, "run_exact", run_exact)


def _cheap_any_optimizer(monkeypatch):
    from counterexamples.any_optimizer import any_optimizer as study

    def run_cell(shift, method, optimizer, weight_decay, lr, steps, replicas, **kwargs):
        _as_simulate(steps, replicas)
        grad = dict(mean=16.0, ci95=[16.0, 16.0], min=16.0, max=16.0)
        return dict(
            shift=shift,
            method=method,
            optimizer=optimizer,
            weight_decay=weight_decay,
            lr=lr,
            steps=steps,
            replicas=replicas,
            epsilon0=1.0,
            final_grad_norm_sq=grad,
            stayed_at_initial_all_t=replicas,
            inner_T=[2.0, 2.0, 2.0],
        )

    monkeypatch.setattr(study, "run_cell", run_cell)
    monkeypatch.setattr(study, "any_optimizer_claim", lambda *args: {})


def _cheap_rotated_bases(monkeypatch):
    from counterexamples.rotated_bases import rotated_bases as study

    _cheap_lock("counterexamples.rotated_bases.rotated_bases")(monkeypatch)
    monkeypatch.setattr(study, "bound", lambda basis="aligned", **kwargs: {"basis": basis, **kwargs})
    monkeypatch.setattr(study, "bound_claim", lambda *args: {})


def _cheap_powersgd_plus(monkeypatch):
    from counterexamples.powersgd_plus import powersgd_plus as study

    _cheap_lock("counterexamples.powersgd_plus.powersgd_plus")(monkeypatch)
    monkeypatch.setattr(
        study, "_plot", lambda curves, eps0, path, settings, replicas: Path(path).write_text("x")
    )
    monkeypatch.setattr(study, "run_pernode", lambda steps, replicas, quick: ([], {}))
    monkeypatch.setattr(study, "_pernode_table", lambda rows: "x")
    monkeypatch.setattr(study, "pernode_claim", lambda *args: {})


def _cheap_lock(module):
    def patch(monkeypatch):
        import importlib
        from types import SimpleNamespace

        import numpy as np

        study = importlib.import_module(module)

        def simulate_lock(problem, *, steps, replicas, **kwargs):
            trace = SimpleNamespace(grad_norm_sq=np.full((2, 3), 16.0))
            return trace, np.ones((2, 3), dtype=bool)

        summary = dict(locked_fraction=1.0, locked_ci95=(0.9, 1.0), mean_grad_norm_sq_T=16.0, ci95=(16, 16))
        monkeypatch.setattr(study, "simulate_lock", simulate_lock)
        monkeypatch.setattr(study, "lock_summary", lambda trace, locked: dict(summary))

    return patch


def _no_network(monkeypatch):
    """benchmarks.bandwidth's argument checks and report only: no namespace, no process."""
    from benchmarks import bandwidth

    class Network:
        def __init__(self, nodes):
            self.nodes = nodes

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def shape(self, mbit, delay_ms=0.0):
            pass

    def measure(net, methods, args, port):
        cell = lambda k: {
            "step": [0.01 * (1 + k)] * args.repeats, "compute": [0.005] * args.repeats,
            "comm": [0.004] * args.repeats, "bytes": 1000.0 / (1 + k), "recorded_bytes": 1000.0 / (1 + k),
            "messages": 1.0, "message_floats": [[250]],
        }  # fmt: skip
        return {"latency_probe_seconds": 1e-4, "methods": {m: cell(k) for k, m in enumerate(methods)}}

    def never(*args, **kwargs):
        raise RuntimeError("no namespaces or processes under the fuzz test")

    monkeypatch.setattr(bandwidth, "why_not", lambda: None)
    monkeypatch.setattr(bandwidth, "why_no_netem", lambda: "no netem (fuzz)")
    monkeypatch.setattr(bandwidth, "busy_cores", lambda seconds: 0.0)
    monkeypatch.setattr(bandwidth, "Network", Network)
    monkeypatch.setattr(bandwidth, "_measure", measure)
    monkeypatch.setattr(bandwidth, "_plot", lambda measured, path: Path(path).write_text("x"))
    monkeypatch.setattr(bandwidth, "make_provenance", lambda command, **settings: {"command": command})
    monkeypatch.setattr(bandwidth.subprocess, "run", never)  # and no ip/tc at all, whatever path
    monkeypatch.setattr(bandwidth.subprocess, "Popen", never)


ENGINE = {"--backend": choice("numpy", "torch"), "--device": choice("cpu", "cuda", "cuda:1", "tpu")}

CLIS = [
    Cli(
        "simsgd.counterexample",
        {
            "--sigma": real(0.0, 5.0, 1e150, 1e153),
            "--N": small_int(-1, 8) | st.just("1024") | st.just("1025"),
            "--steps": small_int(),
            "--replicas": small_int(),
            "--lr": real(5e-4, 0.5, 4e150, 1e300),
            "--momentum": real(0.0, 0.9, 0.999999),
            "--optimizer": choice("sgd", "msgd", "adam"),
            "--tau": small_int(),
            "--rank": small_int(-1, 3),
            "--basis": choice("paper", "aligned", "random"),
            "--precision": choice("float64", "float32", "exact"),
            "--degenerate-qr": choice("previous", "native", "zero", "raise"),
            "--seed": small_int(-1, 3) | st.just(str(2**64 - 1)) | st.just(str(2**64)),
            "--max-seconds": real(0.5, 1.0),
            **ENGINE,
        },
        files=("counterexample_steps.csv", "counterexample.json"),  # and the PNG unless --no-plot
        fixed=("--steps", "3", "--replicas", "4"),
        flags=("--json", "--no-plot", "--allow-partial"),
        # --degenerate-qr raise stops at P_t = 0; an exact run cut short fails unless --allow-partial
        failures=("DegenerateQRError", "Truncated"),
    ),
    Cli(
        "figures",
        dict(ENGINE),
        files=("figure1.png", "figure1.csv", "sweep.csv"),
        flags=("--quick",),
        patch=_cheap_figures,
        source="figures.__main__",
    ),
    Cli(
        "simsgd.distributed.compare",
        {
            "--world-size": small_int(),
            "--steps": small_int(),
            "--replicas": small_int(),
            "--lr": real(0.005, 2.0),
            "--dtype": choice("float64", "float32"),
        },
        patch=_no_launch("simsgd.distributed.compare"),
        failures=("no processes are launched",),
        requires=("torch",),
    ),
    Cli(
        "simsgd.examples.train",
        {
            "--world-size": small_int(),
            "--steps": small_int(),
            "--batch": small_int(),
            "--lr": real(0.05, 1e7),
            "--rank": small_int(),
            "--restart-period": small_int(),
            "--start": small_int(),
        },
        patch=_no_launch("simsgd.examples.train"),
        failures=("no processes are launched",),
        requires=("torch",),
    ),
    Cli(
        "bounds",
        {
            "--seed": small_int(-1, 3) | st.just(str(2**64 - 1)) | st.just(str(2**64)),
            "--jobs": small_int(-1, 3) | st.just("17"),
            **ENGINE,
        },
        files=("report.json", "REPORT.md"),
        flags=("--quick",),
        patch=_cheap_bounds,
        source="bounds.__main__",
    ),
    Cli(
        "bounds.search",
        {"--examples": small_int(), "--seed": small_int(-1, 3) | st.just(str(2**64))},
        files=tuple(f"bounds_worst_{s}.json" for s in ("lemma3", "lemma4", "theorem4")),
        patch=_cheap_bounds_search,
    ),
    Cli(
        "counterexamples.escape",
        {"--steps": small_int(), "--replicas": small_int()},
        files=("escape.json", "escape_table.md", "escape_steps.png"),
        flags=("--quick",),
        patch=_cheap_escape,
        source="counterexamples.escape.escape_study",
    ),
    Cli(
        "counterexamples.remark2",
        {},
        files=("remark2.json", "remark2_table.md", "remark2_sweep.md"),
        flags=("--quick",),
        patch=_cheap_remark2,
        source="counterexamples.remark2.remark2",
    ),
    Cli(
        "counterexamples.search",
        {
            "--seed": small_int(-1, 3) | st.just(str(2**32 - 1)) | st.just(str(2**32)) | st.just(str(2**64)),
            **ENGINE,
        },
        files=("search.json", "search_table.md"),
        flags=("--quick",),
        patch=_cheap_search,
        source="counterexamples.search.search",
    ),
    Cli(
        "counterexamples.any_optimizer",
        {},
        files=("any_optimizer.json", "any_optimizer_table.md"),
        flags=("--quick",),
        patch=_cheap_any_optimizer,
        source="counterexamples.any_optimizer.any_optimizer",
    ),
    Cli(
        "counterexamples.exact_check",
        {},
        files=("exact_check.json",),
        flags=("--quick",),
        patch=_cheap_exact_check,
        source="counterexamples.exact_check.exact_check",
    ),
    Cli(
        "counterexamples.rotated_bases",
        {},
        files=("rotated_bases.json",),
        flags=("--quick",),
        patch=_cheap_rotated_bases,
        source="counterexamples.rotated_bases.rotated_bases",
    ),
    Cli(
        "counterexamples.powersgd_plus",
        {},
        files=("powersgd_plus.json", "pernode_table.md", "counterexample_powersgd_plus.png"),
        flags=("--quick",),
        patch=_cheap_powersgd_plus,
        source="counterexamples.powersgd_plus.powersgd_plus",
    ),
    Cli(
        "simsgd.examples.lm",
        {
            "--world-size": small_int(),
            "--steps": small_int(),
            "--eval-every": small_int(),
            "--batch": small_int(),
            "--context": small_int(),
            "--width": small_int(),
            "--heads": small_int(),
            "--lr": real(3e-3, 1e7),
            "--ranks": small_int(),
            "--taus": small_int(),
            "--seeds": small_int(-1, 3),
            "--cap": small_int() | st.just("10000"),
        },
        files=(
            "lm.csv",
            "lm_table.md",
            "lm_tost.md",
            "lm_target.md",
            "lm_claims.json",
            "provenance.json",
            "lm.png",
        ),
        flags=("--quick", "--analyse"),
        patch=_no_launch("simsgd.examples.lm"),
        failures=("no processes are launched",),
        requires=("torch",),
    ),
    Cli(
        "benchmarks.bandwidth",
        {
            "--nodes": small_int(),
            "--mbit": small_int(-1, 1000),
            "--rank": small_int(),
            "--tau": small_int(),
            "--repeats": small_int(),
            "--timeout": small_int(),
            "--lm-csv": _TEXT,
            "--delay-ms": real(0.0, 5.0),
            "--max-busy": real(0.25, 0.0),
        },
        files=("bandwidth.md", "bandwidth.json", "bandwidth.png"),
        flags=("--quick", "--allow-loaded"),
        patch=_no_network,
        failures=("cannot add --delay-ms",),  # this kernel has no netem: documented refusal
    ),
]


# ---------------------------------------------------------------- output folders


def _out_cases(root: Path):
    """(label, --out text, folder to watch or None) for the awkward places an --out can point."""
    (root / "file").write_text("x")
    taken = root / "taken"
    taken.mkdir()
    return {
        "fresh": (str(root / "new" / "run"), root / "new" / "run"),
        "existing": (str(root), root),
        "empty": ("", None),
        "a file": (str(root / "file"), None),
        "below a file": (str(root / "file" / "sub"), None),
        "proc": ("/proc/simsgd-fuzz", None),
        "sys": ("/sys/simsgd-fuzz", None),
        "too long": (str(root / ("n" * 300)), None),
        "name taken by a folder": (str(taken), taken),
    }


def _listing(folder: Path | None):
    if folder is None or not folder.exists():
        return None
    return sorted((p.name, p.is_dir(), p.stat().st_size if p.is_file() else 0) for p in folder.iterdir())


def run_in_process(main, argv):
    """``cli.run(main, argv)`` with stdout and stderr captured: (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.run(main, argv, prog="fuzz")
    return status, out.getvalue(), err.getvalue()


def check_contract(status, stderr, before, after, files, used_out, failures=()):
    """The CLI contract; returns the list of violations (empty: all kept).

    ``failures``: the run-time failures (exit 1) the CLI documents; any other exit 1 is an
    input the argument checks should have refused with exit 2.
    """
    problems = []
    if status not in (0, 1, 2):
        problems.append(f"exit status {status}")
    if status == 1 and not any(f in stderr for f in failures):
        problems.append("exit 1 for a failure the argument checks should have caught")
    if "Traceback" in stderr:
        problems.append("a traceback on stderr")
    if stderr.count("\n") > 1:
        problems.append(f"{stderr.count(chr(10))} lines on stderr")
    if used_out and (after or []) != (before or []):  # an empty folder made by check_out_dir is no output
        names = {name for name, is_dir, _ in after or []}
        new = names - {name for name, is_dir, _ in before or []}
        complete = status == 0 and set(files) <= names
        if not complete or any(n.startswith(".") for n in new):
            problems.append(f"--out folder changed but not complete: {sorted(new)}")
    return problems


@contextlib.contextmanager
def _working_directory(path):
    """Run in ``path``: the CLIs' default ``--out`` (``out/…``) is relative to it."""
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def _load(entry: Cli):
    for module in entry.requires:
        pytest.importorskip(module)
    import importlib

    return importlib.import_module(entry.source or entry.module).main


@pytest.mark.parametrize("entry", CLIS, ids=[c.module for c in CLIS])
def test_cli_contract_under_fuzzing(entry, monkeypatch):
    main = _load(entry)
    if entry.patch:
        entry.patch(monkeypatch)
    option_names = sorted(entry.options)

    @given(
        chosen=st.lists(st.sampled_from(option_names), max_size=6) if option_names else st.just([]),
        values=st.data(),
        flags=st.lists(st.sampled_from(entry.flags), unique=True) if entry.flags else st.just([]),
        out_case=st.sampled_from(
            ["none", "fresh", "existing", "empty", "a file", "below a file", "proc", "sys", "too long"]
            + (["name taken by a folder"] if entry.files else [])
        )
        if entry.files or entry.module == "figures"
        else st.just("none"),
        junk=st.lists(_TEXT, max_size=1),
    )
    def check(chosen, values, flags, out_case, junk):
        with tempfile.TemporaryDirectory() as tmp, _working_directory(tmp):  # default --out: tmp/out/…
            root = Path(tmp)
            argv = list(entry.fixed)
            for name in chosen:
                argv += [name, values.draw(entry.options[name], label=name)]
            argv += flags + junk
            watched = None
            if out_case != "none":
                text, watched = _out_cases(root)[out_case]
                if out_case == "name taken by a folder":
                    (watched / entry.files[-1]).mkdir()
                argv += ["--out", text]
            before = _listing(watched)
            status, _, stderr = run_in_process(main, argv)
            problems = check_contract(
                status, stderr, before, _listing(watched), entry.files, watched is not None, entry.failures
            )
            assert not problems, (argv, status, stderr, problems)

    check()


# ---------------------------------------------------------------- negative controls


def test_the_contract_check_can_fail(tmp_path):
    """A CLI that half-writes its set, or prints a traceback, or two lines, is caught."""

    def half_writer(argv):
        (tmp_path / "a.csv").write_text("x")
        raise RuntimeError("disk full")

    before = _listing(tmp_path)
    status, _, stderr = run_in_process(half_writer, [])
    assert status == 1 and stderr.count("\n") == 1
    assert check_contract(
        status, stderr, before, _listing(tmp_path), ("a.csv", "b.csv"), True, ("disk full",)
    )
    assert check_contract(1, "prog: failed: OverflowError: x\n", None, None, (), False)  # a missed check

    def noisy(argv):
        import traceback

        try:
            raise ValueError("x")
        except ValueError:
            traceback.print_exc()
        return 0

    status, _, stderr = run_in_process(noisy, [])
    assert any("traceback" in p for p in check_contract(status, stderr, None, None, (), False))


def test_run_maps_every_failure_to_one_line(tmp_path):
    def usage(argv):
        raise cli.UsageError("argument --x: must be 1\nsecond line")

    def memory(argv):
        raise MemoryError

    def interrupted(argv):
        raise KeyboardInterrupt

    def warns(argv):
        import numpy as np

        np.float64(1e308) * 10  # NumPy's overflow warning: one line, not two
        return 0

    assert run_in_process(usage, [])[::2] == (2, "fuzz: error: argument --x: must be 1\n")
    assert run_in_process(memory, [])[0] == 1
    assert run_in_process(interrupted, [])[0] == 130
    status, _, err = run_in_process(warns, [])
    assert status == 0 and err.count("\n") == 1 and "warning" in err


@pytest.mark.parametrize(
    "text",
    ["", "/proc/simsgd-test", "/sys/simsgd-test", "n" * 300, "file", "file/below"],
)
def test_check_out_dir_refuses_before_computing(tmp_path, text):
    (tmp_path / "file").write_text("x")
    path = text if text.startswith("/") or not text else str(tmp_path / text)
    with pytest.raises(cli.UsageError, match="--out"):
        cli.check_out_dir(path)


@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, "geteuid") else True, reason="root writes anywhere")
def test_check_out_dir_refuses_a_read_only_folder(tmp_path):
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(cli.UsageError, match="cannot write"):
            cli.check_out_dir(tmp_path)
    finally:
        tmp_path.chmod(0o700)


def test_output_set_is_all_or_nothing(tmp_path):
    target = tmp_path / "out"
    with cli.output_set(target) as stage:
        (Path(stage) / "a").write_text("1")
        (Path(stage) / "b").write_text("1")
    with pytest.raises(RuntimeError):
        with cli.output_set(target) as stage:
            (Path(stage) / "a").write_text("2")
            raise RuntimeError("failed half way")
    assert {p.name: p.read_text() for p in target.iterdir()} == {"a": "1", "b": "1"}
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging folder left


def test_output_set_stages_inside_the_target_when_the_parent_is_read_only(tmp_path, monkeypatch):
    target = tmp_path / "out"
    real_mkdtemp = tempfile.mkdtemp

    def mkdtemp(prefix, dir):
        if Path(dir) == tmp_path:
            raise PermissionError(13, "Permission denied")
        return real_mkdtemp(prefix=prefix, dir=dir)

    monkeypatch.setattr(cli.tempfile, "mkdtemp", mkdtemp)
    with cli.output_set(target) as stage:
        assert Path(stage).parent == target
        (Path(stage) / "a").write_text("1")
    assert [p.name for p in target.iterdir()] == ["a"]


@pytest.mark.parametrize("entry", CLIS, ids=[c.module for c in CLIS])
def test_the_module_entry_point_goes_through_cli_run(entry):
    """The fuzz test calls ``cli.run(main)``; ``python -m`` must do the same."""
    import importlib.util

    spec = importlib.util.find_spec(entry.module)
    if spec.submodule_search_locations is not None:  # a package: python -m runs its __main__
        spec = importlib.util.find_spec(entry.module + ".__main__")
    source = Path(spec.origin).read_text()
    main_block = source.split('if __name__ == "__main__":', 1)[-1]
    assert "run(main" in main_block


def test_a_failed_run_leaves_no_files(tmp_path):
    from simsgd.counterexample import main

    out = tmp_path / "new"
    argv = ["--steps", "50", "--replicas", "20", "--degenerate-qr", "raise", "--out", str(out)]
    status, _, stderr = run_in_process(main, argv)
    assert status == 1 and "DegenerateQRError" in stderr
    assert list(out.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["new"]


# ---------------------------------------------------------------- issue 23: verdicts, --quick, exact budgets


def undecidable_verdict_problems(summary) -> list:
    """Why the counterexample's verdict should not have been drawn from this run (empty: fine).

    An oracle independent of simsgd.verdict's code, from the JSON summary alone: a decided
    verdict needs R ≥ 30, R·2^-N ≥ 10, a PowerSGD interval of non-zero width, ε₀ at least
    2^10·(L·u·√2)² (the resolution at ||X|| = √2, a lower bound of what the CLI uses), and no
    diverged run; "holds" also PowerSGD+ below PowerSGD and PowerSGD's lower end ≥ ε₀/2;
    "fails" PowerSGD's upper end below ε₀.
    """
    import numpy as np

    kind = summary["verdict"]["kind"]
    if kind == "inconclusive":
        return []
    cfg, methods, eps0 = summary["config"], summary["methods"], summary["epsilon0"]
    plain, plus = methods["powersgd"], methods["powersgd+"]
    u = float(np.finfo(np.dtype(cfg["precision"])).eps)
    problems = [
        text
        for text, bad in (
            ("R < 30", cfg["replicas"] < 30),
            ("R·2^-N < 10", cfg["replicas"] * 2.0 ** -cfg["N"] < 10),
            ("diverged", any("stopped" in m or m["diverged_runs"] for m in methods.values())),
            ("zero-width interval", "ci95" in plain and plain["ci95"][0] == plain["ci95"][1]),
            ("ε₀ below the resolution", eps0 < 2**10 * (8 * u * 2**0.5) ** 2),
        )
        if bad
    ]
    if problems:
        return problems
    low, high = plain["ci95"]
    if kind == "holds" and not (plus["ci95"][1] < low and low >= eps0 / 2 and high >= eps0):
        problems.append("holds without separation or margin")
    if kind == "fails" and not high < eps0:
        problems.append("fails without a significant violation")
    return problems


def test_the_verdict_oracle_can_fail():
    # What the CLI printed before issue 23 for --replicas 1 --steps 100: "fails" from [0.00927, 0.00927].
    row = dict(mean_grad_norm_sq_T=0.00927, ci95=[0.00927, 0.00927], diverged_runs=0)
    config = dict(replicas=1, N=4, precision="float64")
    old = dict(
        verdict=dict(kind="fails"), config=config, methods={"powersgd": row, "powersgd+": row}, epsilon0=1.0
    )
    assert "R < 30" in undecidable_verdict_problems(old)
    same = dict(mean_grad_norm_sq_T=16.0, ci95=[15.0, 17.0], diverged_runs=0)  # T = 1: both at 16
    config = dict(replicas=1000, N=4, precision="float64")
    old = dict(
        verdict=dict(kind="holds"), config=config, methods={"powersgd": same, "powersgd+": same}, epsilon0=1.0
    )
    assert undecidable_verdict_problems(old) == ["holds without separation or margin"]
    old["verdict"]["kind"] = "inconclusive"
    assert undecidable_verdict_problems(old) == []  # control


@given(
    replicas=st.integers(1, 60),
    steps=st.integers(1, 40),
    nodes=st.sampled_from(["1", "2", "3", "4", "6", "1024"]),
    sigma=st.sampled_from(["0", "5", "5,10", "1e150"]),
    basis=st.sampled_from(["aligned", "paper", "random"]),
    lr=st.sampled_from(["5e-4", "0.05", "0.5"]),
    precision=st.sampled_from(["float64", "float32"]),
)
def test_counterexample_never_decides_from_a_run_that_cannot(
    replicas, steps, nodes, sigma, basis, lr, precision
):
    import json

    from simsgd.counterexample import main

    if sigma == "5,10":
        nodes = "2"
    argv = ["--replicas", str(replicas), "--steps", str(steps), "--N", nodes, "--sigma", sigma]
    argv += ["--basis", basis, "--lr", lr, "--precision", precision, "--json"]
    status, out, err = run_in_process(main, argv)
    if status == 2:  # refused up front (σ = 1e150 in float32, a large η): nothing decided
        assert err.count("\n") == 1, err
        return
    assert status == 0, (argv, err)
    summary = json.loads(out)
    assert not undecidable_verdict_problems(summary), (argv, summary["verdict"])


def _seen_sizes(monkeypatch, module, name):
    seen = []

    def stop(*args, **kwargs):
        seen.append(args)
        raise KeyboardInterrupt  # the sizes are known: stop before any work

    monkeypatch.setattr(module, name, stop)
    return seen


def _expected(text):
    try:
        value = int(text)
    except ValueError:
        return None
    return value if value >= 1 else None


def test_escape_quick_never_overrides_an_explicit_value(monkeypatch):
    from counterexamples.escape import escape_study as study

    seen = _seen_sizes(monkeypatch, study, "grid")  # grid(T, short T, R, quick): the first run's sizes

    @given(steps=small_int() | st.none(), replicas=small_int() | st.none())
    def check(steps, replicas):
        seen.clear()
        with tempfile.TemporaryDirectory() as tmp:
            argv = ["--quick", "--out", tmp]
            argv += [] if steps is None else ["--steps", steps]
            argv += [] if replicas is None else ["--replicas", replicas]
            status, _, err = run_in_process(study.main, argv)
        given_ = (("--steps", steps), ("--replicas", replicas))
        bad = [n for n, v in given_ if v is not None and _expected(v) is None]
        if bad:
            assert status == 2 and err.count("\n") == 1 and f"argument {bad[0]}" in err and not seen, (
                argv,
                err,
            )
            return
        if status == 2:  # sizes past the memory limit
            assert "memory" in err and not seen
            return
        want_steps = 400 if steps is None else _expected(steps)
        want_replicas = 16 if replicas is None else _expected(replicas)
        assert status == 130 and (seen[0][0], seen[0][2]) == (want_steps, want_replicas), (argv, seen)

    check()


def test_bench_engine_quick_never_overrides_an_explicit_value(monkeypatch):
    pytest.importorskip("torch")
    from benchmarks import bench_engine

    monkeypatch.setattr(bench_engine, "copy_bandwidth", lambda: 1e9)
    seen = _seen_sizes(monkeypatch, bench_engine, "measure")

    @given(replicas=small_int() | st.none(), steps=small_int() | st.none())
    def check(replicas, steps):
        seen.clear()
        argv = ["--quick", "--engines", "numpy"]
        argv += [] if replicas is None else ["--replicas", replicas]
        argv += [] if steps is None else ["--steps", steps]
        status, _, err = run_in_process(bench_engine.main, argv)
        given_ = (("--replicas", replicas), ("--steps", steps))
        bad = [n for n, v in given_ if v is not None and _expected(v) is None]
        if bad:  # argparse reads the options in order: the first bad one is named
            assert status == 2 and err.count("\n") == 1 and f"argument {bad[0]}" in err and not seen, (
                argv,
                err,
            )
            return
        want_r = [1000, 10_000] if replicas is None else [_expected(replicas)]
        want_t = [200, 20] if steps is None else [_expected(steps)]
        if len(want_r) != len(want_t):
            assert status == 2 and "argument --steps" in err and "one T per --replicas" in err
            return
        if status == 2:
            assert "memory" in err and not seen
            return
        assert status == 130 and seen[0][:2] == (want_r[0], want_t[0]), (argv, seen)

    check()


def _timed_exact(seconds_per_step):
    """run_exact that takes ``steps × seconds_per_step`` (stopping at its max_seconds, as the real one)."""
    from types import SimpleNamespace

    def run_exact(sigma, nodes, steps, *, max_seconds, **kwargs):
        wanted = steps * seconds_per_step
        time.sleep(min(wanted, max_seconds))
        cut = wanted > max_seconds
        done = int(steps * min(1.0, max_seconds / wanted)) if wanted else steps
        return SimpleNamespace(
            outcome="budget" if cut else "held",
            stopped_by="seconds" if cut else None,
            steps_run=max(1, done),
            broken_at=None,
            broken_invariant=None,
            degenerate_steps=[],
            frozen_from=None,
            target="16",
            max_bits=1,
            seconds=min(wanted, max_seconds),
        )

    return run_exact


def test_exact_mode_answers_within_its_budget(monkeypatch):
    import json

    from simsgd import counterexample, exact_batch

    monkeypatch.setattr(exact_batch, "CALIBRATION_SECONDS", 0.02)
    monkeypatch.setattr(counterexample.exact_mod, "run_exact", _timed_exact(1e-7))

    @given(
        replicas=st.integers(1, 10**12),
        steps=st.integers(1, 10**5),
        budget=st.floats(0.01, 2.0),
        partial=st.booleans(),
    )
    def check(replicas, steps, budget, partial):
        argv = ["--precision", "exact", "--replicas", str(replicas), "--steps", str(steps), "--json"]
        argv += ["--max-seconds", repr(budget)] + (["--allow-partial"] if partial else [])
        start = time.monotonic()
        status, out, err = run_in_process(counterexample.main, argv)
        assert time.monotonic() - start < budget + 1.0, argv  # calibration ≤ 8 × 0.02 s, and slack
        if status == 2:
            assert not partial and "--max-seconds" in err and "needs about" in err, (argv, err)
            return
        assert status in (0, 1) and err.count("\n") <= 1, (argv, err)
        truncated = any(json.loads(out)["truncations"].values())
        if status == 1:
            assert not partial and "Truncated" in err
        elif truncated:
            assert partial and "warning: partial result" in err

    check()
