"""The Theorem 1 mechanism studies' parts: the claims contract, the restart sweep, the swap
symmetry behind the paper-basis lock, and per-node degenerate steps (each check with a control)."""

import numpy as np
import pytest

from counterexamples._claim_fields import SENSITIVITY_KEYS, claim, independent, sensitivity
from counterexamples.escape import implementations
from counterexamples.escape.cells import measure as escape_cell
from counterexamples.powersgd_plus import pernode
from counterexamples.remark2 import sweep
from counterexamples.remark2.claims import proposition as r2_proposition
from counterexamples.rotated_bases.claims import MIN_EVENTS, lock_event
from counterexamples.rotated_bases.claims import proposition as bound_proposition
from simsgd.ops import NUMPY
from simsgd.streams import NodeStreams


def _entry(**change):
    rows = {k: sensitivity("holds", {}, "holds") for k in SENSITIVITY_KEYS}
    fields = dict(
        verdict="holds",
        statement="s",
        value={},
        scope=dict.fromkeys(
            ("problem", "N", "basis", "sigma", "eta", "T", "R", "precision", "qr0_convention", "seed")
        ),
        control={"input": "i", "result": "r"},
        sensitivity=rows,
        independent=independent("t.json", 1, True, "how"),
    )
    return claim(**{**fields, **change})


def test_claim_has_every_field_and_refuses_a_missing_one():
    entry = _entry()
    assert list(entry) == ["verdict", "statement", "value", "scope", "control", "sensitivity", "independent"]
    assert entry["independent"]["file"] == "claims/independent/results/t.json"
    with pytest.raises(ValueError, match="verdict"):
        _entry(verdict="true")
    with pytest.raises(ValueError, match="sensitivity.seeds"):
        _entry(sensitivity={k: sensitivity("holds", {}, "holds") for k in SENSITIVITY_KEYS if k != "seeds"})
    with pytest.raises(ValueError, match="changed"):  # a row saying "unchanged" under another verdict
        _entry(sensitivity={k: {"verdict": "fails", "value": {}, "changed": False} for k in SENSITIVITY_KEYS})
    assert sensitivity("fails", {}, "holds")["changed"] and not sensitivity("holds", {}, "holds")["changed"]


def test_burst_gain_and_edge():
    assert sweep.predicted_gain(5e-3) == pytest.approx(4.0) and sweep.edge_lr() == pytest.approx(2.5e-3)
    assert sweep.predicted_gain(sweep.edge_lr()) == pytest.approx(2.0)


def test_the_svd_restart_frees_a_locked_run_at_its_first_restart():
    row = sweep.cell("svd", {"restart": "svd"}, 5e-4, 200, 8)
    assert row["freed_by_first_restart"] == 1.0 and row["freed_at_first_restart"] == 1.0
    assert row["first_move_quartiles"] == [11.0, 11.0, 11.0] and row["first_restart_picked_signal"] == 1.0
    control = sweep.cell("none", {}, 5e-4, 200, 8, method="powersgd")
    assert control["freed_by_first_restart"] == 0.0 and control["converged"] == 0
    assert r2_proposition([control]) == "fails"


def test_r2_proposition_reads_the_wilson_bounds():
    def row(freed, converged, r=100):
        return {"freed_wilson95": freed, "converged_wilson95": converged, "replicas": r}

    assert r2_proposition([row((0.96, 1), (0.96, 1))]) == "holds in scope"
    assert r2_proposition([row((0.96, 1), (0.96, 1)), row((0.96, 1), (0.02, 0.11))]) == "fails"
    assert r2_proposition([row((0.96, 1), (0.6, 0.9))]) == "inconclusive"


def test_the_project_building_blocks_keep_the_swap_symmetry():
    """Equal entries stay equal through NumpyOps.matmul and the closed-form QR; a control input
    that is not symmetric is seen as such (the check can fail)."""
    rows = implementations.symmetry_table(samples=2000)
    own = {(r["block"], r["dtype"]): r["asymmetric_share"] for r in rows}
    assert own[("P = mean_i Δ^{(i)}Q, NumpyOps.matmul (entry by entry)", "float64")] == 0
    assert own[("P̃ = QR(P), householder", "float64")] == own[("P̃ = QR(P), gram-schmidt", "float64")] == 0
    rng = np.random.default_rng(1)
    deltas = rng.standard_normal((500, 3, 2, 2))
    deltas[..., 1, 1], deltas[..., 1, 0] = deltas[..., 0, 0], deltas[..., 0, 1]
    q = np.stack([np.ones(500), np.ones(500) + 1e-3], -1)[..., None]  # q₁ ≠ q₂
    p = NUMPY.node_mean(NUMPY.matmul(deltas, q[:, None]))
    assert (p[:, 0, 0] != p[:, 1, 0]).mean() > 0.9


def test_paper_basis_lock_is_kept_by_the_default_and_left_in_a_random_basis():
    kept = escape_cell("paper", 5.0, 3, 200, 8)
    left = escape_cell("random", 5.0, 3, 200, 8)
    assert kept["x1e-3"]["escaped"] == kept["subspace"]["escaped"] == kept["span"]["escaped"] == 0
    assert left["x1e-3"]["escaped"] == left["subspace"]["escaped"] == 8


def test_the_blas_backend_runs_the_same_algorithm():
    implementations.register()
    implementations.register()  # once is enough; twice is harmless
    same = [
        escape_cell("random", 5.0, 3, 8, 4, backend=b)["max_error_norm_sq"]
        for b in ("numpy", implementations.BLAS)
    ]
    assert same[0] == pytest.approx(same[1], rel=1e-9)


def test_bfloat16_runs_in_bfloat16():
    pytest.importorskip("torch")
    implementations.register()
    row = escape_cell("aligned", 5.0, 3, 20, 4, precision="bfloat16")
    assert row["span"] is None and row["x1e-3"]["escaped"] == 0 and row["precision"] == "bfloat16"


def test_pernode_degenerate_steps_are_where_the_signed_sums_say():
    """σ = (5, 10): none for PowerSGD, only A-locked SSP steps for PowerSGD+; control σ = (5, 5)."""
    plain = pernode.measure((5.0, 10.0), "powersgd", 300, 60)
    plus = pernode.measure((5.0, 10.0), "powersgd+", 300, 60)
    assert plain["degenerate_share"] == 0
    a_lock = plus["by_state"]["SSP in A-lock"]
    assert a_lock["degenerate"] > 0 and a_lock["degenerate"] == round(plus["degenerate_share"] * 300 * 60)
    assert abs(a_lock["share"] - pernode.expected_a_lock_share(2)) < 0.1
    control = pernode.measure((5.0, 5.0), "powersgd", 300, 60)
    assert control["by_state"]["SSP in B-lock"]["share"] > 0.6  # 1 − (1/2)² = 0.75 expected


def test_lock_event_is_the_engines_xi0_and_the_bound_needs_enough_events():
    event = lock_event(0, 4000, 3)
    xi = NodeStreams(0, np.arange(4000), np.arange(3)).at(0).rademacher()
    assert np.array_equal(event, (xi == 1).all(1)) and abs(event.mean() - 1 / 8) < 0.02
    row = {
        "event_runs": MIN_EVENTS - 1,
        "event_runs_at_16_all_t": MIN_EVENTS - 1,
        "ci95": [0, 2],
        "epsilon0": 1,
    }
    assert bound_proposition(row) == "inconclusive"
    assert (
        bound_proposition({**row, "event_runs": MIN_EVENTS, "event_runs_at_16_all_t": MIN_EVENTS}) == "holds"
    )
    assert bound_proposition({**row, "event_runs": MIN_EVENTS, "event_runs_at_16_all_t": 1}) == "fails"
