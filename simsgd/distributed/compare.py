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
"""

from __future__ import annotations

import sys
from functools import partial

from .. import cli
from ..engine import simulate
from .launch import launch
from .matching import ReversedNodes, forced_step_diff, matching_problems, trace_diff
from .runner import in_lanes, simulate_distributed

__all__ = ["main"]


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
    cases, labels = [], []
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
    for label, (problem, options), row in zip(labels, cases, rows):
        sim = simulate(problem, nodes=args.world_size, progress=False, **options)
        reordered = simulate(ReversedNodes(problem), nodes=args.world_size, progress=False, **options)
        reference = max(trace_diff(row["reference"], sim).values())
        torch_cols = [max(row["torch"][s].values()) for s in checkpoints]
        reord_cols = [max(trace_diff(reordered, sim, s).values()) for s in checkpoints]
        print(
            f"{label:28s} {reference:9.1e} "
            + " ".join(f"{v:9.1e}" for v in torch_cols)
            + f" {max(row['forced'].values()):9.1e} "
            + " ".join(f"{v:9.1e}" for v in reord_cols)
        )
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, prog="python -m simsgd.distributed.compare"))
