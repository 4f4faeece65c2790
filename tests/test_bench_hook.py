"""benchmarks/bench_hook.py: its argument checks, before any process starts (issue 23)."""

from types import SimpleNamespace

import pytest

pytest.importorskip("torch")

from benchmarks import bench_hook  # noqa: E402
from simsgd.cli import run  # noqa: E402


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--world-size", "0"], "argument --world-size: must be an integer in [1, 64], got 0"),
        (["--world-size", "1000"], "argument --world-size"),
        (["--rank", "100000"], "argument --rank"),
        (["--rank", "64"], "argument --rank: r = 64 compresses none of the model's matrices"),
        (["--width", "2", "--rank", "1"], "argument --width: 2 is too small"),
        (["--repeats", "0"], "argument --repeats"),
    ],
)
def test_bad_arguments_are_one_prefixed_line_before_any_launch(argv, message, capsys, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("launched")

    monkeypatch.setattr(bench_hook, "launch_quietly", never)
    assert run(bench_hook.main, argv, prog="python -m benchmarks.bench_hook") == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [f"python -m benchmarks.bench_hook: error: {err.split('error: ', 1)[1]}"]
    assert message in err


def test_compressed_shapes_follow_the_hooks_rule():
    args = SimpleNamespace(width=256, layers=3, rank=63)
    assert bench_hook.compressed_shapes(args) == [(256, 256)] * 3  # (512)(63)(2) < 65536
    args.rank = 64  # (512)(64)(2) = 65536: not compressed, as PowerSGDState(min_compression_rate=2)
    assert bench_hook.compressed_shapes(args) == []
    args.rank = 1
    assert bench_hook.compressed_shapes(args) == [(256, 256)] * 3 + [(10, 256)]
