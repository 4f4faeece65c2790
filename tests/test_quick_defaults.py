"""--quick changes defaults only: an explicit option wins and is checked (cli.parse_with_quick)."""

import pytest

from simsgd import cli


def _parser():
    p = cli.Parser(prog="prog")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--steps", type=cli.integer("--steps", 1), default=400)
    p.add_argument("--sizes", type=cli.integer("--sizes", 1), nargs="+", default=[1, 2])
    return p


QUICK = {"steps": 100, "sizes": [3]}


def test_given_options_sees_a_value_equal_to_the_default():
    p = _parser()
    assert cli.given_options(p, ["--steps", "400"]) == {"steps"}
    assert cli.given_options(p, []) == set()
    assert cli.given_options(p, ["--quick", "--sizes", "1", "2"]) == {"quick", "sizes"}


@pytest.mark.parametrize(
    "argv, steps, sizes",
    [
        ([], 400, [1, 2]),
        (["--quick"], 100, [3]),
        (["--quick", "--steps", "400"], 400, [3]),  # explicit, even equal to the full default
        (["--steps", "7", "--quick", "--sizes", "5", "6"], 7, [5, 6]),
    ],
)
def test_quick_fills_only_what_was_not_given(argv, steps, sizes):
    args = cli.parse_with_quick(_parser(), argv, QUICK)
    assert (args.steps, args.sizes) == (steps, sizes)


def test_an_explicit_bad_value_is_refused_under_quick(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.parse_with_quick(_parser(), ["--quick", "--steps", "0"], QUICK)
    assert (
        exit_.value.code == 2
        and "argument --steps: must be an integer in [1, ∞), got 0" in capsys.readouterr().err
    )


def _escape(monkeypatch):
    from counterexamples.escape import escape_study as study

    seen = []

    def stop(steps, short_steps, replicas, quick):
        seen.append((steps, replicas))
        raise KeyboardInterrupt  # stop before the grid: only the parsed sizes matter here

    monkeypatch.setattr(study, "grid", stop)
    return study.main, seen


@pytest.mark.parametrize(
    "argv, option",
    [
        (["--quick", "--steps", "0"], "--steps"),  # was: exit 0, --quick's T = 100 silently used
        (["--quick", "--replicas", "-1"], "--replicas"),
        (["--steps", "0"], "--steps"),  # control: the same value without --quick
    ],
)
def test_escape_checks_explicit_values_under_quick(argv, option, capsys, monkeypatch, tmp_path):
    main, seen = _escape(monkeypatch)
    assert cli.run(main, argv + ["--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"argument {option}:" in err and seen == []


def test_escape_explicit_values_win_over_quick(monkeypatch, tmp_path):
    main, seen = _escape(monkeypatch)
    assert cli.run(main, ["--quick", "--steps", "7", "--out", str(tmp_path)]) == 130
    assert cli.run(main, ["--quick", "--out", str(tmp_path)]) == 130  # control: the quick defaults
    assert seen == [(7, 16), (400, 16)]


@pytest.mark.parametrize(
    "argv, option",
    [
        (["--replicas", "0"], "--replicas"),  # was: "argument --steps: give one T per --replicas"
        (["--quick", "--replicas", "0"], "--replicas"),  # was: exit 0 with --quick's R
        (["--quick", "--steps", "5"], "--steps"),  # 2 R (quick), 1 T (given): named, with the source
        (["--replicas", "1000000000", "--steps", "1000"], "--replicas"),  # 3e4 GiB, refused up front
    ],
)
def test_bench_engine_names_the_right_option(argv, option, capsys):
    from benchmarks import bench_engine

    assert cli.run(bench_engine.main, argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"argument {option}:" in err


def test_bench_engine_quick_keeps_explicit_sizes(monkeypatch):
    pytest.importorskip("torch")
    from benchmarks import bench_engine

    seen = []

    def measure(replicas, steps, **kwargs):
        seen.append((replicas, steps))
        raise KeyboardInterrupt

    monkeypatch.setattr(bench_engine, "copy_bandwidth", lambda: 1e9)
    monkeypatch.setattr(bench_engine, "measure", measure)
    assert cli.run(bench_engine.main, ["--quick", "--replicas", "50", "--steps", "3"]) == 130
    assert cli.run(bench_engine.main, ["--quick"]) == 130  # control: the quick sizes
    assert seen == [(50, 3), (1000, 200)]
