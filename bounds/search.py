"""Targeted property-based search for the instances closest to attaining Lemma 3, Lemma 4 and Theorem 4.

Hypothesis draws an instance (problem family and its parameters, N, r, τ, μ, η, T), runs
PowerSGD+ (MSGD) on it and steers the search towards large measured/bound ratios with
``hypothesis.target``. The tests (``tests/test_bounds_search.py``) run it under the
``ci`` profile (small budget) or ``deep`` (large), asserting that every bound holds; the
best instances found by ``python -m bounds.search --out tests/data`` are saved as JSON
and replayed as ordinary tests, so a regression in a bound or the engine shows.
"""

from __future__ import annotations

import math
import os
import sys

from hypothesis import HealthCheck, Phase, given, settings, target
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from simsgd import theory
from simsgd.cli import Parser, UsageError, check_out_dir, output_set, run
from simsgd.output import atomic_write_json
from simsgd.stats import max_mean_bounds, mean_bounds

from . import problems

__all__ = ["STATEMENTS", "instances", "measure", "search", "main"]

STATEMENTS = ("Lemma 3", "Lemma 4", "Theorem 4")
REPLICAS = 32


@st.composite
def instances(draw):
    """A JSON-able instance: ``spec``, N, r, τ, μ, η ≤ (1−μ)/(2L), T."""
    family = draw(st.sampled_from(problems.FAMILIES))
    sigma = draw(st.sampled_from([0.0, 0.5, 1.0, 2.0, 5.0]))
    if family == "psi":
        spec = dict(
            family="psi",
            basis=draw(st.sampled_from(["paper", "aligned"])),
            noise_scale=sigma,
            lock_start=draw(st.booleans()),
        )
    elif family == "general":
        k = draw(st.integers(1, 2))
        spec = dict(
            family="general",
            m=draw(st.integers(2 * k, 5)),
            n=draw(st.integers(2 * k, 5)),
            k=k,
            noise_scale=sigma,
            basis=draw(st.sampled_from(["aligned", "random"])),
            lock_start=draw(st.booleans()),
        )
    else:
        spec = dict(
            family="quadratic",
            m=draw(st.integers(2, 6)),
            n=draw(st.integers(2, 6)),
            heterogeneity=draw(st.sampled_from([0.0, 0.5, 1.0, 2.0])),
            noise=draw(st.sampled_from([0.1, 1.0])),
        )
    nodes = draw(st.integers(1, 8))
    shape = problems.make(spec, 1).shape
    mu = draw(st.sampled_from([0.0, 0.5, 0.9]))
    tau = draw(st.integers(1, 32))
    L = float(problems.make(spec, nodes).L)
    return dict(
        spec=spec,
        nodes=nodes,
        rank=draw(st.integers(1, min(shape))),
        restart_period=tau,
        momentum=mu,
        lr=(1 - mu) / (2 * L) * 10.0 ** -draw(st.integers(0, 4)),
        steps=3 * tau + draw(st.integers(1, 60)),
    )


def measure(instance: dict, replicas: int = REPLICAS, seed: int = 0, method: str = "powersgd+") -> dict:
    """Run one instance; the measured quantity, its UCB and the bound of each statement.

    Returns
    -------
    dict
        ``{statement: {"measured", "upper", "bound", "ratio"}}`` (ratio = measured mean / bound).
    """
    problem = problems.make(instance["spec"], instance["nodes"])
    trace = problems.run_msgd(problem, method, instance, replicas, seed)
    own = getattr(problem, "omega_sq", None)
    c = theory.constants(problem, None if own is not None else theory.visited_omega_sq(trace.grad_norm_sq))
    d = theory.delta(instance["rank"], problem.shape)
    tau, mu, T = instance["restart_period"], instance["momentum"], instance["steps"]
    terms = theory.theorem4_terms(
        c, lr=instance["lr"], momentum=mu, restart_period=tau, delta=d, nodes=instance["nodes"], steps=T
    )
    found = {
        "Lemma 3": (max_mean_bounds(trace.error_norm_sq), theory.lemma3_bound(tau, c.G_sq, d)),
        "Lemma 4": (max_mean_bounds(trace.momentum_norm_sq[:, 1:]), theory.lemma4_bound(tau, c.G_sq, d, mu)),
        "Theorem 4": (mean_bounds(trace.grad_norm_sq[:, :T].mean(axis=1)), terms.total),
    }
    return {
        k: dict(measured=e.mean, upper=e.upper, bound=b, ratio=e.mean / b if b > 0 else math.inf)
        for k, (e, b) in found.items()
    }


def search(statement: str, examples: int, seed: int) -> dict:
    """The instance with the largest measured/bound ratio for ``statement`` that Hypothesis finds.

    Seeded (``seed``) and without an example database, so the same call finds the same instance.
    """
    best = dict(ratio=-math.inf)

    @hypothesis_seed(seed)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate, Phase.target],
        suppress_health_check=list(HealthCheck),
    )
    @given(instances())
    def probe(instance):
        result = measure(instance)[statement]
        target(result["ratio"], label=statement)
        if result["ratio"] > best["ratio"]:
            best.update(instance=instance, **result)

    probe()
    return dict(statement=statement, examples=examples, seed=seed, replicas=REPLICAS, run_seed=0, **best)


def main(argv=None) -> int:
    parser = Parser(prog="python -m bounds.search", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="out/bounds-search", help="folder for the worst-case JSON files")
    parser.add_argument("--examples", type=int, default=200, help="Hypothesis examples per statement (≥ 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the search (≥ 0)")
    args = parser.parse_args(argv)
    if args.examples < 1:
        raise UsageError(f"argument --examples: must be an integer ≥ 1, got {args.examples}")
    if args.seed < 0:
        raise UsageError(f"argument --seed: must be an integer ≥ 0, got {args.seed}")
    names = ["bounds_worst_" + s.lower().replace(" ", "") + ".json" for s in STATEMENTS]
    out = check_out_dir(args.out, names=names)
    found = [search(s, args.examples, args.seed) for s in STATEMENTS]
    command = f"python -m bounds.search --out {args.out} --examples {args.examples} --seed {args.seed}"
    with output_set(out) as stage:
        for f in found:
            name = "bounds_worst_" + f["statement"].lower().replace(" ", "") + ".json"
            atomic_write_json(os.path.join(stage, name), dict(f, command=command))
    for f in found:
        print(f"{f['statement']}: ratio {f['ratio']:.4g} at {f['instance']}")
    return 0


if __name__ == "__main__":
    sys.exit(run(main, prog="python -m bounds.search"))
