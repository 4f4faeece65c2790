"""The check API (simsgd.check) and simsgd.sweep: each status reachable, each check able to fail."""

import dataclasses
import math
import sys

import numpy as np
import pytest

import simsgd
from bounds.controls import Silent  # sends nothing: X never moves, so a non-vacuous bound must fail
from simsgd import check
from simsgd.methods import PowerSGD, PowerSGDPlus
from simsgd.problems import HeterogeneousQuadratic, Psi2x2

# A Theorem 4 row that can fail: ψ aligned, σ = 1, N = 1, τ = 2, μ = 0 (bound 11.8 < ||∇f(X_0)||² = 16).
PSI = Psi2x2(1.0, basis="aligned")
ROW = dict(nodes=1, rank=1, restart_period=2, momentum=0.0, lr=1.796e-4, steps=6000, replicas=32)


def test_theorem4_holds_where_it_can_fail_and_a_silent_compressor_fails_it():
    ok = check.check_theorem4(PSI, **ROW)
    assert ok.status == "holds" and not ok.vacuous
    assert ok.bound < ok.do_nothing == 16.0
    assert ok.measured.upper < ok.bound
    assert set(ok.terms) == {"optimization", "noise", "compression"}
    assert ok.excess is not None and ok.control_status is not None
    bad = check.check_theorem4(PSI, method=Silent(), paired=False, control=False, **ROW)
    assert bad.status == "fails" and bad.measured.lower > bad.bound  # 16 > 11.8


def test_vacuous_and_inconclusive_are_reported_as_such():
    loose = check.check_theorem4(PSI, **dict(ROW, restart_period=100, steps=500))
    assert loose.vacuous and loose.status == "vacuous" and "vacuous" in loose.line()
    few = check.check_theorem4(PSI, **dict(ROW, replicas=5, steps=500))
    assert few.status == "inconclusive" and "replicas" in few.would_decide


def test_theorem4_on_a_given_trace_equals_the_check_that_runs_it_and_refuses_other_settings():
    row = dict(ROW, steps=300)
    ran = check.check_theorem4(PSI, paired=False, control=False, **row)
    same = simsgd.simulate(PSI, method="powersgd+", optimizer="msgd", progress=False, **row)
    given = check.check_theorem4(PSI, paired=False, control=False, trace=same, **row)
    assert given.measured == ran.measured and given.bound == ran.bound and given.status == ran.status
    # R is the trace's: 40 replicas, not the 32 of the arguments (so the trace, not a rerun, is measured)
    more = simsgd.simulate(
        PSI, method="powersgd+", optimizer="msgd", progress=False, **dict(row, replicas=40)
    )
    wider = check.check_theorem4(PSI, paired=False, control=False, trace=more, **row)
    assert wider.measured.n == 40 and wider.settings["R"] == 40
    assert wider.measured.mean == pytest.approx(more.grad_norm_sq[:, :-1].mean())
    with pytest.raises(ValueError, match="restart_period"):
        check.check_theorem4(PSI, paired=False, control=False, trace=same, **dict(row, restart_period=3))


def test_corollary1_and_lemma3():
    c = check.check_corollary1(PSI, nodes=1, restart_period=2, momentum=0.0, steps=3000, replicas=32)
    assert c.statement == "Corollary 1"
    assert set(c.terms) == {"optimization", "noise", "compression", "theorem4"}
    assert c.compression_term == c.terms["theorem4"]["compression"]  # Theorem 4's term at the corollary's η
    lemma = check.check_lemma3(PSI, nodes=1, restart_period=2, momentum=0.0, lr=1e-3, steps=300, replicas=32)
    assert lemma.status == "holds" and math.isinf(lemma.trivial) and lemma.control is not None


def test_nan_or_inf_constants_are_refused_naming_them():
    bad = HeterogeneousQuadratic(6, 5, nodes=2)
    bad.variance = float("nan")
    with pytest.raises(ValueError, match="variance"):
        check.check_theorem4(bad, nodes=2, lr=1e-3, steps=10, replicas=4, omega_sq=1.0)
    c, _ = check.estimate_constants(
        HeterogeneousQuadratic(6, 5, nodes=2), nodes=2, replicas=8, pilot_steps=20
    )
    with pytest.raises(ValueError, match="omega_sq"):
        check.check_theorem4(
            PSI, nodes=1, lr=1e-3, steps=10, replicas=4, constants=dataclasses.replace(c, omega_sq=math.inf)
        )


def test_estimated_constants_are_lower_bounds_of_the_true_ones():
    problem = HeterogeneousQuadratic(6, 5, nodes=4)  # its variance is exactly (a² + b²)mn everywhere
    c, notes = check.estimate_constants(problem, nodes=4, samples=64)
    assert 0.9 * problem.variance <= c.variance <= problem.variance * 1.01
    assert any("visited region" in n for n in notes) and c.omega_sq_source == "visited"
    with pytest.raises(ValueError, match="L"):
        check.estimate_constants(object(), nodes=1)


def test_contraction_lemmas():
    d = np.random.default_rng(0).standard_normal((200, 3, 6, 5))
    svd = check.check_contraction(PowerSGDPlus(rank=2, rule=1), d, delta=2 / 5)
    assert svd.status == "holds" and svd.rho_max <= 1 - 2 / 5
    ssp = check.check_contraction(PowerSGD(rank=2), d, delta=2 / 5)
    assert ssp.status == "fails"  # SSP is no δ-contraction: the control of Lemma 2
    assert check.check_contraction(PowerSGD(rank=2), d).status == "holds"  # Lemma 1 holds for it
    assert check.check_contraction(PowerSGD(rank=2), d, delta=0.0).status == "vacuous"


def test_sweep_cells_are_simulate_runs_and_are_cached(monkeypatch, tmp_path):
    problem = Psi2x2(5.0)
    kw = dict(nodes=4, steps=60, replicas=16, lr=5e-4, seed=2)
    table = simsgd.sweep(
        problem, methods=["powersgd", "powersgd+"], taus=[1, 5], ranks=[1], cache_dir=tmp_path, **kw
    )
    assert [(r["method"], r["tau"]) for r in table] == [
        ("powersgd", None),
        ("powersgd+", 1),
        ("powersgd+", 5),
    ]
    direct = simsgd.simulate(problem, method="powersgd+", restart_period=5, **kw)
    row = table.where(method="powersgd+", tau=5)[0]
    assert row["final_grad_sq"] == pytest.approx(direct.grad_norm_sq[:, -1].mean(), rel=1e-15)
    assert row["floats_per_step"] == pytest.approx(direct.floats_sent.mean())

    def ran(*args, **kwargs):
        raise RuntimeError("simulate ran")

    monkeypatch.setattr(sys.modules["simsgd.sweep"], "simulate", ran)
    assert (
        simsgd.sweep(problem, methods=["powersgd", "powersgd+"], taus=[1, 5], cache_dir=tmp_path, **kw)
        == table
    )
    fresh = Psi2x2(5.0)  # another object: the memory misses, the disk cache hits
    assert (
        simsgd.sweep(fresh, methods=["powersgd", "powersgd+"], taus=[1, 5], cache_dir=tmp_path, **kw) == table
    )
    with pytest.raises(RuntimeError, match="ran"):  # the control: a cell not cached (another seed) runs
        simsgd.sweep(fresh, methods=["powersgd"], **dict(kw, seed=3))
    with pytest.raises(ValueError, match="rank"):
        simsgd.sweep(problem, rank=2, **kw)
    assert table.to_structured()["final_grad_sq"].shape == (3,) and "| powersgd+ |" in table.to_markdown()


def test_sweep_of_a_problem_that_does_not_pickle_runs_uncached_on_disk(tmp_path):
    problem = Psi2x2(5.0)
    problem.schedule = lambda t: t  # a lambda: the problem no longer pickles
    table = simsgd.sweep(problem, methods=["powersgd"], cache_dir=tmp_path, nodes=4, steps=5, replicas=2)
    assert len(table) == 1 and list(tmp_path.iterdir()) == []
