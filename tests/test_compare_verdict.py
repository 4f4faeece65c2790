"""python -m simsgd.distributed.compare ends with a verdict on the cells expected to agree."""

import pytest

torch = pytest.importorskip("torch")

from simsgd.cli import run  # noqa: E402
from simsgd.distributed import compare  # noqa: E402

CHECKPOINTS = [25, 50, 100, 200]


def _cells(reference=0.0, forced=1e-15, torch_at=1e-14):
    return {"reference": reference, "forced": forced, **{f"torch@{s}": torch_at for s in CHECKPOINTS}}


# The measured float64 pattern of docs/distributed.md: chaotic rows far apart, the others agreeing.
AS_MEASURED = [
    ("psi-paper", "powersgd+", "msgd", _cells(forced=1.5, torch_at=6.5e2)),
    ("psi-aligned", "powersgd+", "adam", _cells(forced=0.0, torch_at=4.2e-15)),
    ("quadratic", "powersgd", "sgd", _cells(forced=6.2e-15, torch_at=2.0)),
]


def test_the_measured_pattern_is_as_expected():
    line, misses = compare.verdict(AS_MEASURED, "float64", CHECKPOINTS)
    assert misses == [] and line.startswith("verdict: as expected: reference ≤ 0 in 3/3 cells")
    assert "forced ≤ 1e-13 in 1/1" in line and "torch ≤ 1e-10 in 4/4" in line


@pytest.mark.parametrize(
    "row, column",
    [
        (("quadratic", "powersgd", "sgd", _cells(reference=1e-16)), "reference"),  # not bit for bit
        (("quadratic", "powersgd+", "adam", _cells(forced=1e-12)), "forced"),  # a step's rounding too large
        (
            ("psi-aligned", "powersgd+", "msgd", _cells(torch_at=1e-9)),
            "torch@25",
        ),  # amplified where it is not
    ],
)
def test_a_cell_past_its_bound_is_a_mismatch(row, column):
    line, misses = compare.verdict([*AS_MEASURED, row], "float64", CHECKPOINTS)
    assert line.startswith("verdict: NOT as expected") and any(column in m for m in misses)


def test_float32_bounds_and_no_free_running_claim():
    bounds = compare.expected_bounds("psi-aligned", "powersgd+", "float32", CHECKPOINTS)
    assert bounds == {"reference": 0.0}
    assert compare.expected_bounds("quadratic", "powersgd", "float32", CHECKPOINTS)["forced"] == 5e-5


def _in_process(fn, world_size, *args, **kwargs):
    """launch() with one rank in this process (no spawn): a gloo group of size 1."""
    import torch.distributed as dist

    if dist.is_initialized():
        pytest.skip("a process group is already initialised in this process")
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        return [fn(*args)]
    finally:
        dist.destroy_process_group()


def test_a_real_run_meets_the_expectations(monkeypatch, capsys):
    monkeypatch.setattr(compare, "launch", _in_process)
    assert run(compare.main, ["--world-size", "1", "--steps", "30", "--replicas", "2"]) == 0
    out = capsys.readouterr().out
    assert "verdict: as expected: reference ≤ 0 in 18/18 cells" in out, out
    assert (
        "forced ≤ 1e-13 in 6/6 cells" in out and "torch ≤ 1e-10 in 6/6 cells" in out
    )  # 3 optimizers × t = 25, 30
