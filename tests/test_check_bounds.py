"""simsgd.check's run-level checks beyond one horizon: prefixes, the paired excess and its share,
Theorem 1's floor on the control, Lemma 4's vacuity by construction, the stationary excess."""

import math

import numpy as np
import pytest

from bounds.controls import Kick, Silent
from simsgd import check, theory
from simsgd.problems import Psi2x2

PSI = Psi2x2(5.0, basis="aligned", x0=np.eye(2) / 2)  # ⟨A, X_0⟩ = 1: ||∇f(X_0)||² = 16, ΔF = 1
ROW = dict(nodes=1, rank=1, restart_period=1, momentum=0.0, lr=8.4e-4, replicas=32, seed=3)


def test_horizons_are_prefixes_of_one_run():
    short, long = check.check_theorem4_at(PSI, horizons=[1000, 4000], **ROW)
    alone = check.check_theorem4(PSI, steps=1000, **ROW)
    assert short.measured == alone.measured and short.excess == alone.excess and short.bound == alone.bound
    assert long.settings["T"] == 4000 and long.terms["optimization"] == pytest.approx(
        short.terms["optimization"] / 4
    )


def test_excess_share_and_control_floor():
    c = check.check_theorem4(PSI, steps=4000, **ROW)
    assert c.status == "holds" and not c.vacuous and c.excess_significant
    assert c.share.mean == pytest.approx(c.excess.mean / c.measured.mean) and c.share.lower < c.share.mean
    assert c.excess_ratio == pytest.approx(c.excess.mean / c.terms["compression"])
    assert c.control_floor == pytest.approx(PSI.epsilon0(1)) == 8.0  # 4ψ'(1)²/2
    assert c.control_predicted == ""  # ε₀ = 8 < bound ≈ 15.8: no prediction
    assert c.tail_excess.mean < c.excess.mean  # the start-up cost is in the full average only
    # the control of the excess: uncompressed MSGD against itself has exactly none
    same = check.check_theorem4(PSI, method="full", steps=1000, control=False, **ROW)
    assert same.excess.mean == 0.0 and not same.excess_significant


def test_silent_compressor_fails_and_a_forced_lock_states_no_floor():
    bad = check.check_theorem4(PSI, method=Silent(), paired=False, control=False, steps=4000, **ROW)
    assert bad.status == "fails" and bad.measured.lower > bad.bound
    locked = Psi2x2(5.0, basis="aligned", lock_start=True)
    c = check.check_theorem4(locked, steps=200, **dict(ROW, lr=1e-4))
    assert c.control_floor is None and c.control_predicted is None


def test_lemma4_is_vacuous_by_construction_and_fails_only_with_lemma1_broken():
    kw = dict(nodes=1, rank=1, restart_period=2, momentum=0.0, lr=2.5e-4, steps=200, replicas=32)
    lemma4 = check.check_lemma4(PSI, **kw)
    c = theory.constants(PSI)
    implied = 2 * (theory.lemma3_bound(2, c.G_sq, 0.5) + c.G_sq)
    assert lemma4.trivial == pytest.approx(implied) and lemma4.bound >= lemma4.trivial
    assert lemma4.status == "vacuous" and lemma4.control_status == "vacuous"
    size_sq = 0.8 * theory.lemma3_bound(2, c.G_sq, 0.5)  # Lemma 3 kept, Lemma 1 broken
    kicked3 = check.check_lemma3(PSI, method=Kick(size_sq), control=False, **kw)
    kicked4 = check.check_lemma4(PSI, method=Kick(size_sq), control=False, **kw)
    assert kicked3.status == "holds" and kicked3.measured.mean == pytest.approx(size_sq)
    assert kicked4.status == "fails" and kicked4.measured.lower > kicked4.bound


def test_stationary_excess_windows_and_terms():
    at_T, at_10T = check.stationary_excess(PSI, horizons=[500, 5000], **dict(ROW, lr=4e-3))
    assert (at_T.start, at_T.stop, at_10T.start, at_10T.stop) == (250, 500, 2500, 5000)
    assert at_10T.excess.lower > 0 and at_10T.base.mean < 1e-20  # ψ's MSGD has no floor
    terms = theory.theorem4_terms(theory.constants(PSI), lr=4e-3, momentum=0.0, restart_period=1, delta=0.5,
                                  nodes=1, steps=1)  # fmt: skip
    assert at_10T.compression == terms.compression and at_10T.constant == pytest.approx(548 * at_10T.ratio)
    assert at_10T.corrected < at_10T.compression  # 180 < 548 at μ = 0
    none = check.stationary_excess(PSI, horizons=[500], method="full", **dict(ROW, lr=4e-3))[0]
    assert none.excess.mean == 0.0 and np.all(none.values == 0.0)


def test_corollary1_lr_scale():
    kw = dict(nodes=1, rank=1, restart_period=1, momentum=0.0, steps=500, replicas=32, control=False)
    own = check.check_corollary1(PSI, **kw)
    scaled = check.check_corollary1(PSI, lr_scale=0.1, **kw)
    assert scaled.settings["η"] == pytest.approx(0.1 * own.settings["η"]) and scaled.bound == own.bound
    with pytest.raises(ValueError, match="lr_scale"):
        check.check_corollary1(PSI, lr_scale=0.0, **kw)
    assert math.isfinite(own.bound)
