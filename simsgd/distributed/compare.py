"""How closely the torch.distributed backend reproduces :func:`simsgd.simulate`.

Three measurements per configuration, each the largest ``max|a − b| / max|b|`` over every
trace field (and X_T, Q_{T-1}) and every step:

``reference``  free-running, :class:`~simsgd.distributed.ops.ReferenceOps` (NumPy kernels,
               node means all-gathered and summed in node order): expected 0.
``torch``      free-running, :class:`~simsgd.distributed.ops.TorchOps` (torch kernels,
               ``all_reduce``), at a few step counts.
``forced``     :class:`~simsgd.distributed.ops.TorchOps` one step at a time from the
               simulator's own state (teacher forcing), so that rounding differences
               cannot compound: the per-step agreement of the two implementations.
``reordered``  the simulator against itself with the node terms summed in reverse order:
               how much the algorithm itself amplifies a last-bit change.

Run ``python -m simsgd.distributed.compare --world-size 4`` (about 2 minutes on 2 cores).

It ends with a verdict on the cells that are expected to agree (:func:`expected_bounds`):
``reference`` exactly 0 in every row; ``forced`` ≤ 1e-13 (float64) or 5e-5 (float32) on the
quadratic, where one step's rounding is all that differs (measured ≤ 6.2e-15 and 2.9e-6);
``torch`` ≤ 1e-10 at every checkpoint for ψ in the aligned basis under PowerSGD+ in float64,
where rounding is not amplified. No other cell is expected to agree: Algorithm 2 amplifies a
last-bit difference about 10× every 15–20 steps, so free-running rows differ by up to O(1) (and
more, relative to a small trace field) after 200 steps, as the simulator does from itself when
only its sum order changes (``reordered``); on ψ with even N a P_t that is exactly 0 in one
implementation and 1e-17 in the other switches the degenerate-QR convention in one step. A
cell past its bound is exit 1.
"""

from __future__ import annotations

import sys
from functools import partial

from .. import cli
from ..engine import simulate
from .launch import launch
from .matching import ReversedNodes, forced_step_diff, matching_problems, trace_diff
from .runner import in_lanes, simulate_distributed

__all__ = ["main", "expected_bounds", "verdict", "Mismatch"]

FORCED_BOUND = {"float64": 1e-13, "float32": 5e-5}
FREE_BOUND = 1e-10


class Mismatch(RuntimeError):
    """A cell expected to agree did not."""


def expected_bounds(name, method, dtype, checkpoints) -> dict:
    """Column -> the largest relative difference expected for this row; columns absent: none expected.

    See the module docstring for why these cells, and only these, must agree.
    """
    bounds = {"reference": 0.0}
    if name == "quadratic":
        bounds["forced"] = FORCED_BOUND[dtype]
    if name == "psi-aligned" and method == "powersgd+" and dtype == "float64":
        bounds.update({f"torch@{s}": FREE_BOUND for s in checkpoints})
    return bounds


def verdict(rows, dtype, checkpoints):
    """(line, misses): what agreed as expected, and each cell past its bound.

    Parameters
    ----------
    rows : list of (name, method, optimizer, {column: relative difference})
    dtype : str
    checkpoints : list of int
    """
    met, misses = {}, []
    for name, method, optimizer, cells in rows:
        for column, bound in expected_bounds(name, method, dtype, checkpoints).items():
            kind = column.split("@")[0]
            met.setdefault(kind, [0, 0, bound])
            met[kind][1] += 1
            if cells[column] <= bound:
                met[kind][0] += 1
            else:
                misses.append(f"{name} {method} {optimizer} {column} = {cells[column]:.2g} > {bound:g}")
    said = ", ".join(f"{kind} ≤ {bound:g} in {ok}/{n} cells" for kind, (ok, n, bound) in met.items())
    head = "as expected" if not misses else f"NOT as expected ({len(misses)} cells past their bound)"
    return (
        f"verdict: {head}: {said}. The other cells are not expected to agree: free-running runs amplify "
        "last-bit differences (compare reord@, the simulator against itself), and ψ's degenerate steps "
        "can switch the QR(0) convention in one implementation only.",
        misses,
    )


def _worker(cases, checkpoints, lanes):
    references = in_lanes(partial(simulate_distributed, reference=True), cases, lanes)
    free = in_lanes(simulate_distributed, cases, lanes)
    forced = in_lanes(forced_step_diff, cases, lanes)
    return [
        {"reference": ref, "torch": {s: trace_diff(run, ref, s) for s in checkpoints}, "forced": f}
        for ref, run, f in zip(references, free, forced)
    ]


def main(argv=None) -> int:
    parser = cli.Parser(prog="python -m simsgd.distributed.compare", description=__doc__.split("\n")[0])
    parser.add_argument("--world-size", type=cli.integer("--world-size", 1, 64), default=4)
    parser.add_argument("--steps", type=cli.integer("--steps", 1, 10**6), default=200)
    parser.add_argument("--replicas", type=cli.integer("--replicas", 1, 10**4), default=4)
    parser.add_argument("--lr", type=cli.real("--lr", 0.0, 1.0, low_open=True), default=0.005)
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    args = parser.parse_args(argv)
    checkpoints = sorted({min(s, args.steps) for s in (25, 50, 100, args.steps)})
    cases, labels, keys = [], [], []
    for name, problem in matching_problems(args.world_size).items():
        for method in ("powersgd", "powersgd+"):
            for optimizer in ("sgd", "msgd", "adam"):
                rank = 2 if name == "quadratic" else 1
                cases.append(
                    (
                        problem,
                        dict(
                            method=method,
                            optimizer=optimizer,
                            rank=rank,
                            lr=args.lr,
                            steps=args.steps,
                            replicas=args.replicas,
                            seed=3,
                            restart_period=7,
                            dtype=args.dtype,
                        ),
                    )
                )
                labels.append(f"{name:12s} {method:9s} {optimizer:4s}")
                keys.append((name, method, optimizer))
    rows = launch(_worker, args.world_size, cases, checkpoints, 6, timeout=120)[0]
    print(
        f"max relative difference to simsgd.simulate (N = {args.world_size}, {args.dtype}, "
        f"{args.replicas} replicas, η = {args.lr})"
    )
    print(
        f"{'case':28s} {'reference':>9s} "
        + " ".join(f"{'torch@' + str(s):>9s}" for s in checkpoints)
        + f" {'forced':>9s} "
        + " ".join(f"{'reord@' + str(s):>9s}" for s in checkpoints)
    )
    measured = []
    for label, key, (problem, options), row in zip(labels, keys, cases, rows):
        sim = simulate(problem, nodes=args.world_size, progress=False, **options)
        reordered = simulate(ReversedNodes(problem), nodes=args.world_size, progress=False, **options)
        reference = max(trace_diff(row["reference"], sim).values())
        torch_cols = [max(row["torch"][s].values()) for s in checkpoints]
        reord_cols = [max(trace_diff(reordered, sim, s).values()) for s in checkpoints]
        forced = max(row["forced"].values())
        print(
            f"{label:28s} {reference:9.1e} "
            + " ".join(f"{v:9.1e}" for v in torch_cols)
            + f" {forced:9.1e} "
            + " ".join(f"{v:9.1e}" for v in reord_cols)
        )
        cells = {"reference": reference, "forced": forced}
        cells.update({f"torch@{s}": v for s, v in zip(checkpoints, torch_cols)})
        measured.append((*key, cells))
    line, misses = verdict(measured, args.dtype, checkpoints)
    print(line)
    if misses:
        raise Mismatch("; ".join(misses))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, prog="python -m simsgd.distributed.compare"))
