"""The study's claims, keyed for the claims ledger: verdict, statement, value, scope, control,
sensitivity and (where another analyst re-derived it) independent, each from the record's numbers.

Verdicts are drawn by rules stated here, the same in both modes; where the quick mode cannot
reach what the full mode measures, the claim carries ``quick_note`` and the verdict its own run
supports.
``python -m bounds.rebuild`` rebuilds them from a written report's rows.
"""

from __future__ import annotations

import numpy as np

from . import rows as rowlib
from .independent import compare_tau

__all__ = ["build", "SHARE_TARGET"]

SHARE_TARGET = 0.10  # the issue's "excess ≥ 10% of the measured mean"
EXACT = " — exact-arithmetic dynamics: the iterates stay in span{A, B}"


def _by_id(record) -> dict:
    return {r["id"]: r for r in record["rows"]}


def _est(e) -> str:
    return f"{e['mean']:.4g} [{e['lower']:.3g}, {e['upper']:.3g}]"


def _scope(rows: list, record) -> dict:
    s = [r["settings"] for r in rows]
    return dict(
        problems=sorted({r["problem"] for r in rows}),
        N=sorted({x["N"] for x in s}),
        tau=sorted({x["τ"] for x in s}),
        mu=sorted({x["μ"] for x in s}),
        eta=[min(x["η"] for x in s), max(x["η"] for x in s)] if s else [],
        T=[min(x["T"] for x in s), max(x["T"] for x in s)] if s else [],
        R=sorted({x["R"] for x in s}),
        precision="float64",
        qr0="previous (a rank-deficient P keeps P̃_{t−1})",
        seed=record["seed"],
        mode=record["mode"],
    )


def _row_value(row) -> dict:
    out = dict(
        status=row["status"], bound=row["bound"], measured=row["measured"]["mean"], vacuous=row["vacuous"]
    )
    if row.get("excess"):
        out.update(
            excess=row["excess"]["mean"], excess_lower=row["excess"]["lower"], share=row["share"]["mean"]
        )
    return out


def _sensitivity(variants: dict, base_verdict: str, judge, by_id) -> dict:
    out = {}
    for key, v in variants.items():
        row = by_id.get(v) if isinstance(v, str) else v
        if row is None:
            continue
        verdict, value = judge(row)
        out[key] = dict(verdict=verdict, value=value, changed=verdict != base_verdict)
    return out


def _row_judge(row):
    return rowlib.verdict([row]), _row_value(row)


def _controls_of(rows: list) -> dict:
    predicted = [r for r in rows if r.get("control_predicted") == "fails"]
    exact = [r for r in predicted if r["control_scope"] == "exact"]
    rounding = [r for r in predicted if r["control_scope"] == "rounding-dependent"]
    return dict(
        predicted=len(predicted),
        predicted_exact=len(exact),
        predicted_exact_failed=sum(r["control_status"] == "fails" for r in exact),
        predicted_rounding_dependent=len(rounding),
        predicted_rounding_dependent_failed=sum(r["control_status"] == "fails" for r in rounding),
        failed_anywhere=sum(r["control_status"] == "fails" for r in rows if r.get("control")),
        examples=[
            f"{r['id']}: PowerSGD {_est(r['control'])} vs bound {r['bound']:.4g} ({r['control_status']})"
            for r in exact[:3]
        ],
    )


def _statement_rows(record, statement) -> list:
    return [r for r in record["rows"] if r["statement"] == statement]


def _t4(record, by_id) -> dict:
    rows = _statement_rows(record, "Theorem 4")
    live = [r for r in rows if not r["vacuous"]]
    tested = [r for r in live if r["tests_compression"]]
    verdict = rowlib.verdict(rows)
    ctrl = _controls_of(live)
    silent = record["controls"]["silent"]
    worst = max(live, key=lambda r: r["measured"]["mean"] / r["bound"]) if live else None
    value = dict(
        rows=len(rows),
        nonvacuous=len(live),
        tests_compression=len(tested),
        vacuous=len(rows) - len(live),
        max_measured_over_bound=None if worst is None else worst["measured"]["mean"] / worst["bound"],
        max_excess_over_compression_term=max((r["excess_ratio"] for r in tested), default=None),
        controls=ctrl,
    )
    base = by_id[record["sensitivity"]["bases"]["T4"]]
    return dict(
        verdict=verdict,
        statement=(
            f"Theorem 4's bound holds in {sum(r['status'] == 'holds' for r in live)} of {len(live)} "
            f"non-vacuous rows, {len(tested)} of them where PowerSGD+'s paired excess over MSGD is "
            f"significant (largest measured/bound {value['max_measured_over_bound']:.3g}); PowerSGD "
            f"violates the same bound in {ctrl['predicted_exact_failed']} of the {ctrl['predicted_exact']} "
            "rows where Theorem 1 predicts it with an exact lock"
        ),
        value=value,
        scope=_scope(live, record),
        control=dict(
            input="PowerSGD (no restart) where Theorem 1's ε₀ > bound; "
            "a compressor that sends nothing (X_t ≡ X₀)",
            result=(
                f"PowerSGD fails in {ctrl['predicted_exact_failed']}/{ctrl['predicted_exact']} exact-lock "
                f"rows and in {ctrl['predicted_rounding_dependent_failed']}/"
                f"{ctrl['predicted_rounding_dependent']} rounding-dependent ones; the silent compressor "
                f"scores {_est(silent['measured'])} against bound {silent['bound']:.4g}: {silent['status']}"
            ),
        ),
        sensitivity=_sensitivity(record["sensitivity"]["T4"], rowlib.verdict([base]), _row_judge, by_id),
        independent=_independent_rows(record),
    )


def _independent_rows(record) -> dict | None:
    found = record["independent"]["theorem4_rows"]
    if not found:
        return None
    return dict(
        file=found[0]["file"],
        value=[dict(setting=f["setting"]["name"], theirs=f["theirs"], ours=f["ours"]) for f in found],
        agrees=all(f["agrees"] for f in found),
        how="their NumPy implementation written from the paper (random basis, R = 256), rerun here at their "
        "σ, τ, η, T with simsgd.check (random basis, same R); agrees = the two 95% intervals of the paired "
        "excess overlap in every row",
    )


def _c1(record, by_id) -> dict:
    rows = [r for r in _statement_rows(record, "Corollary 1")]
    live = [r for r in rows if not r["vacuous"]]
    ctrl = _controls_of(live)
    base = by_id[record["sensitivity"]["bases"]["C1"]]
    return dict(
        verdict=rowlib.verdict(rows),
        statement=(
            f"Corollary 1's rate holds in {sum(r['status'] == 'holds' for r in live)} of {len(live)} "
            "non-vacuous rows at its own η (measured/rate ≤ "
            f"{max((r['measured']['mean'] / r['bound'] for r in live), default=float('nan')):.3g}); "
            "the excess share there is ≤ "
            f"{max((r['share']['mean'] for r in live), default=float('nan')):.2g}: at the corollary's "
            "small η compression barely shows"
        ),
        value=dict(
            rows=len(rows),
            nonvacuous=len(live),
            tests_compression=sum(r["tests_compression"] for r in live),
            shares=[r["share"]["mean"] for r in live],
            controls=ctrl,
        ),
        scope=_scope(live, record),
        control=dict(
            input="PowerSGD (no restart) at the corollary's η where ε₀ > rate",
            result=f"fails in {ctrl['predicted_exact_failed']}/{ctrl['predicted_exact']} exact-lock rows",
        ),
        sensitivity=_sensitivity(record["sensitivity"]["C1"], rowlib.verdict([base]), _row_judge, by_id),
    )


def _lemma(record, by_id, statement, key) -> dict:
    rows = _statement_rows(record, statement)
    base = by_id[record["sensitivity"]["bases"][key]]
    ratios = [r["measured"]["mean"] / r["bound"] for r in rows]
    failed = sum(r["control_status"] == "fails" for r in rows)
    return rows, base, ratios, failed


def _l3(record, by_id) -> dict:
    rows, base, ratios, failed = _lemma(record, by_id, "Lemma 3", "L3")
    tau = record["tightness"]["lemma3_tau"]
    return dict(
        verdict=rowlib.verdict(rows),
        statement=(
            f"Lemma 3 holds in {sum(r['status'] == 'holds' for r in rows)} of {len(rows)} rows at ≤ "
            f"{max(ratios):.2g} of its bound; PowerSGD (no restart) violates it in {failed} of {len(rows)}; "
            "with the lock forced, max_t E‖ē_t‖² grows like τ^"
            f"{np.mean(tau['local_slopes']):.2f} (τ² attained), at ≤ {max(tau['ratio']):.2g} of 45τ²G²/δ²"
        ),
        value=dict(
            max_ratio=max(ratios),
            control_failed=failed,
            rows=len(rows),
            tau_local_slopes=tau["local_slopes"],
            empirical_constant=tau["empirical_constant"],
        ),
        scope=_scope(rows, record),
        control=dict(
            input="PowerSGD (no restart), whose error memory grows without bound when locked",
            result=f"fails in {failed}/{len(rows)} rows",
        ),
        sensitivity=_sensitivity(record["sensitivity"]["L3"], rowlib.verdict([base]), _row_judge, by_id),
    )


def _l4(record, by_id) -> dict:
    rows, base, ratios, _ = _lemma(record, by_id, "Lemma 4", "L4")
    kick = record["controls"]["kick"]
    implied = [r["measured"]["mean"] / r["trivial"] for r in rows]
    return dict(
        verdict=rowlib.verdict(rows),
        statement=(
            "Lemma 4 is vacuous by construction: pathwise ‖m_t‖² ≤ (Σμ^{t−k})Σμ^{t−k}‖Δ̂_k‖² and ‖Δ̂_k‖² ≤ "
            "‖Δ̄_k‖² ≤ "
            "2‖ē_k‖² + 2‖ḡ_k‖² (Lemma 1), so E‖m_t‖² ≤ 2(45τ²G²/δ² + G²)/(1−μ)² once Lemma 3 holds, and "
            "92τ²/δ² ≥ 90τ²/δ² + 2 for every τ ≥ 1, δ ≤ 1; it can fail only where Lemma 1 or 3 does. "
            f"Measured: ≤ {max(ratios):.2g} of its bound in {len(rows)} rows"
        ),
        value=dict(
            max_ratio=max(ratios),
            max_ratio_to_implied=max(implied),
            rows=len(rows),
            algebra="92τ²G²/((1−μ)²δ²) − 2(45τ²G²/δ² + G²)/(1−μ)² = 2G²(τ²/δ² − 1)/(1−μ)² ≥ 0",
        ),
        scope=_scope(rows, record),
        control=dict(
            input="a compressor that breaks Lemma 1 but keeps Lemma 3: Δ̂ = Δ̄ ± z in turn "
            "(bounds.controls.Kick)",
            result=f"Lemma 3 {kick['lemma3']['status']} ({_est(kick['lemma3']['measured'])} vs "
            f"{kick['lemma3']['bound']:.4g}); "
            f"Lemma 4 {kick['lemma4']['status']} ({_est(kick['lemma4']['measured'])} vs "
            f"{kick['lemma4']['bound']:.4g})",
        ),
        sensitivity=_sensitivity(record["sensitivity"]["L4"], rowlib.verdict([base]), _row_judge, by_id),
    )


def _eq19_judge(found):
    return ("fails" if abs(found["ratio_min"] - 1.0) > 1e-9 else "holds"), dict(
        ratio=[found["ratio_min"], found["ratio_max"]], expected=found["expected"], gap=found["gap"]
    )


def _eq19(record) -> dict:
    err = record["errata"][0]
    base, control = record["eq19"]["base"], record["eq19"]["control"]
    verdict, value = _eq19_judge(dict(ratio_min=min(base["ratios"]), ratio_max=max(base["ratios"]), **base))
    value.update(theorem4_changed=False, corrected_constant="180/(1−μ)² + 368μ²/(1−μ)⁴ ≤ 548/(1−μ)⁴")
    return dict(
        verdict=verdict,
        statement=(
            "(19) writes ‖X_t − X̃_t‖² = η²‖ē_t‖², but X̃_t = X_t − η/(1−μ)ē_t makes it η²/(1−μ)²‖ē_t‖² "
            f"(measured {min(base['ratios']):.6g} = 1/(1−μ)² at μ = 0.5); carried through, the third "
            "term's constant is 180/(1−μ)² + 368μ²/(1−μ)⁴ ≤ 548/(1−μ)⁴, so Theorem 4 as stated is unchanged"
        ),
        value=value,
        scope=dict(problem="ψ aligned σ = 1", N=2, mu=0.5, eta=1e-3, T=20, precision="float64", seed=0),
        control=dict(
            input="μ = 0, where the printed (19) is right",
            result=f"ratio {min(control['ratios']):.6g}–{max(control['ratios']):.6g} (= 1): "
            "the check then finds no erratum",
        ),
        sensitivity=_sensitivity(record["sensitivity"]["eq19"], verdict, _eq19_judge, {}),
        check=err["check"],
    )


def _t_for(row, target=SHARE_TARGET) -> float | None:
    """The horizon at which :func:`bounds.rows.share_model` reaches ``target`` (None if e ≤ 0)."""
    T0 = row["settings"]["T"]
    e = row["tail_excess"]["mean"]
    msgd = (row["measured"]["mean"] - row["excess"]["mean"]) * T0
    c = row["excess"]["mean"] * T0 - e * T0
    return None if e <= 0 else max(T0, (target * (msgd + c) - c) / ((1 - target) * e))


def _share_judge_row(row):
    if row["vacuous"]:
        return "vacuous", _row_value(row)
    ok = row["tests_compression"] and row["share"]["lower"] >= SHARE_TARGET
    return ("holds in scope" if ok else "fails"), dict(_row_value(row), share_lower=row["share"]["lower"])


def _t4_excess(record, by_id) -> dict:
    rows = [r for r in _statement_rows(record, "Theorem 4") if r["tests_compression"]]
    big = [r for r in rows if r["share"]["lower"] >= SHARE_TARGET]
    best = max(rows, key=lambda r: r["share"]["mean"]) if rows else None
    quick = record["mode"] == "quick"
    verdict = "holds in scope" if big else "open"
    generic = by_id.get("psi5-random@T=40000")
    base_short = by_id.get("psi5-aligned@T=16000")
    value = dict(
        max_share=None if best is None else best["share"],
        max_share_row=None if best is None else best["id"],
        bound_over_do_nothing=None if best is None else best["bound"] / best["do_nothing"],
        rows_at_or_above_target=[r["id"] for r in big],
        generic_basis=None
        if generic is None
        else dict(
            share=generic["share"], tail_excess=generic["tail_excess"], T_for_target_model=_t_for(generic)
        ),
        model_check=None
        if base_short is None or best is None
        else dict(
            predicted_from=base_short["id"],
            predicted=rowlib.share_model(base_short, best["settings"]["T"]),
            measured=best["share"]["mean"],
            at=best["id"],
        ),
    )
    sens = record["sensitivity"]["T4"]
    variants = {}
    if "eta_x0.1" in sens:
        r = sens["eta_x0.1"]
        pred = rowlib.share_model(r, 10 * r["settings"]["T"])
        variants["eta_x0.1"] = dict(
            verdict="fails" if pred < SHARE_TARGET else "holds in scope",
            value=dict(share=r["share"]["mean"], predicted_at_10T=pred, extrapolated=True),
        )
    if "eta_x10" in sens:
        judged = _share_judge_row(sens["eta_x10"])
        variants["eta_x10"] = dict(verdict=judged[0], value=judged[1])
    if best is not None and not quick:
        pred = rowlib.share_model(best, 10 * best["settings"]["T"])
        variants["T_x10"] = dict(
            verdict="holds in scope" if pred >= SHARE_TARGET else "fails",
            value=dict(predicted_share=pred, T=10 * best["settings"]["T"], extrapolated=True),
        )
        for key, rid in (("sigma", "psi3-aligned@T=160000"), ("seeds", "psi5-aligned-seed1@T=160000")):
            if rid in by_id:
                judged = _share_judge_row(by_id[rid])
                variants[key] = dict(verdict=judged[0], value=dict(judged[1], row=rid))
        short = by_id.get("psi3-aligned@T=16000")
        if "sigma" not in variants and short is not None:
            # σ = 3 run to 16 000 steps only (the full run's budget): its share model at the best row's
            # T, a lower estimate in the aligned basis (model_check says by how much at σ = 5)
            pred = rowlib.share_model(short, best["settings"]["T"])
            variants["sigma"] = dict(
                verdict="holds in scope" if pred >= SHARE_TARGET else "fails",
                value=dict(
                    share=short["share"]["mean"],
                    predicted_share=pred,
                    T=best["settings"]["T"],
                    row=short["id"],
                    extrapolated=True,
                ),
            )
    for v in variants.values():
        v["changed"] = v["verdict"] != verdict
    tight = {p["value"]: p for s in record["tightness"]["sweeps"] if s["name"] == "N" for p in s["points"]}
    value["issue_estimate"] = _issue_estimate(record)
    value["exactness"] = _exactness(record)
    out = dict(
        verdict=verdict,
        statement=(
            "Where Theorem 4's bound is non-vacuous PowerSGD+'s paired excess over MSGD reaches "
            + (
                "—"
                if best is None
                else f"{100 * best['share']['mean']:.1f}% [{100 * best['share']['lower']:.1f}, "
                f"{100 * best['share']['upper']:.1f}] of its measured mean ({best['id']}, {best['problem']}"
                f"{EXACT if 'aligned' in best['problem'] else ''}; "
                "bound at "
                f"{100 * value['bound_over_do_nothing']:.0f}% of ‖∇f(X₀)‖²)"
            )
            + f"; {len(big)} rows reach {100 * SHARE_TARGET:.0f}%"
            + (
                ""
                if generic is None or value["generic_basis"]["T_for_target_model"] is None
                else f"; in a random basis (rounding perturbs the iterates off span{{A, B}}) the stationary "
                f"excess is {value['exactness']['aligned_over_random']:.2g}× smaller and "
                f"{100 * SHARE_TARGET:.0f}% needs T ≈ {value['generic_basis']['T_for_target_model']:.2g} "
                f"({generic['id']}, share model)"
            )
        ),
        value=value,
        scope=_scope(rows, record),
        control=dict(
            input="N = 2 (even: ξ̄ = 0 half the time releases the error memory) at the tightness base",
            result=""
            if 2 not in tight
            else f"excess {_est(tight[2]['excess_10T'])}: significant = {tight[2]['significant']}",
        ),
        sensitivity=variants,
        independent=_long_row(record),
    )
    if quick:
        out["quick_note"] = (
            f"the share reaches {100 * SHARE_TARGET:.0f}% only at T ≈ 1.6·10⁵ (aligned basis), about 280 s "
            "of CPU per "
            "row; the quick run's horizon cannot, so its verdict is open where the full run's "
            "holds in scope"
        )
    return out


def _exactness(record) -> dict | None:
    """The stationary excess at the tightness base in the aligned basis (exact arithmetic), with a
    10⁻¹² perturbation off span{A, B}, and in a random basis (rounding), at 10T.
    """
    sweep = next((s for s in record["tightness"]["sweeps"] if s["name"] == "exactness"), None)
    if sweep is None:
        return None
    aligned, perturbed, random = (p["excess_10T"] for p in sweep["points"])
    return dict(
        aligned=aligned,
        off_span_1e12=perturbed,
        random=random,
        aligned_over_random=aligned["mean"] / random["mean"],
        exact_limit_L2_eta2_sigma2_sigma5=64.0 * sweep["fixed"]["lr"] ** 2 * 5.0**2,
    )


def _issue_estimate(record) -> dict | None:
    """The issue's estimate at σ = 1 (excess ≈ 1.4η²G², the compression term ~10⁵× larger) beside the
    σ = 1 point of the tightness sweep (random basis, N = 1, τ = 1, μ = 0, η = 10⁻³; ψ: L = 8, δ = 1/2).
    """
    point = next(
        (
            p
            for s in record["tightness"]["sweeps"]
            if s["name"] == "σ"
            for p in s["points"]
            if p["value"] == 1.0
        ),
        None,
    )
    if point is None:
        return None
    per = 548.0 * 8.0**2 / 0.5**2  # compression term / (η²τ²G²) at μ = 0, τ = 1
    return dict(
        issue=dict(excess_over_eta2_G2=1.4, term_over_excess=1e5),
        measured=dict(
            excess=point["excess_10T"]["mean"],
            excess_over_eta2_G2=point["ratio"] * per,
            term_over_excess=1.0 / point["ratio"] if point["ratio"] > 0 else None,
        ),
    )


def _long_row(record) -> dict | None:
    long = record["independent"].get("long_row")
    if not long or long.get("ours_predicted_share") is None:
        return None
    return dict(
        file=long["file"],
        value=dict(
            theirs_share_ci95=long["theirs_share"],
            ours_predicted=long["ours_predicted_share"],
            T=long["scope"]["T"],
        ),
        agrees=bool(long["agrees"]),
        how="their measured excess share of a T = 409 600 run "
        "(ψ random basis, N = 1, σ = 2, τ = 1, η = 8.44e-4) "
        "against this package's share model (bounds.rows.share_model) from its own T = 1600 row of the "
        "same setting",
    )


def _tight_judge(p):
    e = p["excess_10T"] or p["excess_T"]
    return ("holds in scope" if e["upper"] <= p["compression"] else "fails"), dict(
        excess=e["mean"], compression=p["compression"], ratio=p["ratio"], constant=p["constant"]
    )


def _t4_tight(record) -> dict:
    sweeps = record["tightness"]["sweeps"]
    points = [p for s in sweeps for p in s["points"] if p["significant"]]
    bad = [p for p in points if (p["excess_10T"] or p["excess_T"])["upper"] > p["compression"]]
    worst = max(points, key=lambda p: p["ratio"]) if points else None
    base = next(p for s in sweeps for p in s["points"] if s["name"] == "τ" and p["value"] == 1)
    fits = {s["name"]: s["fit"] for s in sweeps if s["fit"]}
    stationary = [p["tail_ratio"] for p in points if p["tail_ratio"] is not None]
    ctrl = record["tightness"]["control"]
    sens = dict(record["sensitivity"].get("T4-tight", {}))
    sens.setdefault("T_x10", base)
    sigma = next((p for s in sweeps if s["name"] == "σ" for p in s["points"] if p["value"] == 2.0), None)
    if sigma:
        sens["sigma"] = sigma
    verdict = "fails" if bad else ("holds in scope" if points else "open")
    variants = {}
    for key, p in sens.items():
        v, val = _tight_judge(p)
        variants[key] = dict(verdict=v, value=val, changed=v != verdict)
    indep = compare_tau(sweeps)
    return dict(
        verdict=verdict,
        statement=(
            f"Past the transient (the tail excess at 10T is {min(stationary):.2g}–{max(stationary):.2g}× the "
            "one at T, where a 1/T start-up cost would be 0.1×) "
            f"the stationary excess uses at most {worst['ratio']:.2g} of the compression term (empirical "
            f"constant {worst['constant']:.3g} vs 548; {worst['ratio_corrected']:.2g} of the "
            "erratum-corrected term); fitted slopes describe it, they do not test the theorem: "
            + ", ".join(
                f"{k}: {v['slope']:.2f} [{v['lower']:.2f}, {v['upper']:.2f}]" for k, v in fits.items()
            )
        ),
        value=dict(
            max_ratio=worst["ratio"],
            max_ratio_corrected=max(p["ratio_corrected"] for p in points),
            empirical_constant=worst["constant"],
            at=dict(problem=worst["problem"], value=worst["value"]),
            fits=fits,
            tail_ratio_10T_over_T=[min(stationary), max(stationary)],
        ),
        scope=dict(
            base=dict((k, v) for k, v in record["tightness"]["base"].items()),
            R=record["config"]["tight_replicas"],
            T="2/η and 10T",
            window="last half",
            precision="float64",
            seed=record["seed"],
        ),
        control=dict(
            input=f"PowerSGD (no restart) at η = {ctrl['settings']['η']:g}, aligned basis "
            "(its locked runs keep ‖∇f(X₀)‖²)",
            result=f"stationary excess {_est(ctrl['excess'])} vs compression term {ctrl['compression']:.3g}: "
            f"exceeds = {ctrl['exceeds']}",
        ),
        sensitivity=variants,
        independent=None
        if not indep
        else dict(
            file=indep[0]["file"],
            value=indep,
            agrees=all(i["agrees"] for i in indep),
            how="their stationary excess (tail at 10T, ψ N = 3, σ = 5, μ = 0.9, η = 6.25e-4, R = 64) "
            "beside this "
            "study's random-basis sweep at the same settings; agrees = 95% intervals overlap at every τ",
        ),
    )


def build(record: dict) -> dict:
    """The claims dict of a record of :func:`bounds.study.run_all`."""
    by_id = _by_id(record)
    out = {
        "T4": _t4(record, by_id),
        "C1": _c1(record, by_id),
        "L3": _l3(record, by_id),
        "L4": _l4(record, by_id),
        "eq19": _eq19(record),
        "T4-excess": _t4_excess(record, by_id),
        "T4-tight": _t4_tight(record),
    }
    if record["mode"] == "quick":
        for claim in out.values():
            if not claim["sensitivity"] or len(claim["sensitivity"]) < 5:
                claim.setdefault(
                    "quick_sensitivity_note",
                    "the quick run replays only the variants that fit its budget; the full run has all five",
                )
    return out
