"""The escape study's Markdown tables and figure, from its cells (:mod:`.cells`)."""

from __future__ import annotations

from simsgd.output import atomic_savefig

__all__ = ["fmt", "table", "plot"]


def fmt(entry):
    """'median [q1–q3] (escaped/R)', 'never (0/R)', or '–' where the criterion does not apply."""
    if entry is None:
        return "–"
    if entry["quartiles"] is None:
        return f"never (0/{entry['runs']})"
    q = entry["quartiles"]
    return f"{q[1]:g} [{q[0]:g}–{q[2]:g}] ({entry['escaped']}/{entry['runs']})"


def _pivot(cells, precision):
    rows = [c for c in cells if c["part"] == "paper" and c["precision"] == precision]
    if not rows:
        return ["(not run)"]
    sigmas = sorted({c["sigma"] for c in rows})
    lines = [
        "| implementation | N | " + " | ".join(f"σ = {s:g}" for s in sigmas) + " | T | flagged |",
        "|---|---|" + "---|" * len(sigmas) + "---|---|",
    ]
    keys = sorted({(c["implementation"], c["nodes"]) for c in rows}, key=lambda k: (_ORDER.index(k[0]), k[1]))
    for impl, n in keys:
        by_sigma = {c["sigma"]: c for c in rows if (c["implementation"], c["nodes"]) == (impl, n)}
        flagged = max(c["flagged_share"] for c in by_sigma.values())
        lines.append(
            f"| {impl} | {n} | "
            + " | ".join(fmt(by_sigma[s]["x1e-3"]) if s in by_sigma else "" for s in sigmas)
            + f" | {next(iter(by_sigma.values()))['steps']} | {flagged:.3f} |"
        )
    return lines


_ORDER = ("default", "native", "lapack", "gram-schmidt", "blas")


def table(symmetry, cells, long, short, replicas):
    """The study's Markdown: the symmetry table, the paper-basis pivots, then every cell."""
    lines = [
        "Which building blocks keep the paper basis's swap symmetry (share of random symmetric inputs "
        "whose output has two unequal entries; 0 keeps Claim 1's lock exact):",
        "",
        "| block | dtype | asymmetric share |",
        "|---|---|---|",
        *(f"| {r['block']} | {r['dtype']} | {r['asymmetric_share']:.4f} |" for r in symmetry),
        "",
        f"Paper basis, lock forced (ξ_0 ≡ 1), PowerSGD + MSGD μ = 0.9, η = 5e-4, R = {replicas}, seed 0. "
        "Step at which max|⟨A, X_t − X_0⟩| first exceeds 1e-3: median [IQR] (escaped/R). 'default' = "
        "the project's (entry-by-entry product, closed-form rank-1 Householder, QR(0) = previous); "
        "'native' = QR(0) native; 'lapack' = LAPACK's Householder QR; 'gram-schmidt' = PyTorch's hook; "
        "'blas' = np.matmul. 'flagged' = largest share of steps whose P was degenerate.",
        "",
        "float64:",
        "",
        *_pivot(cells, "float64"),
        "",
        "float32:",
        "",
        *_pivot(cells, "float32"),
        "",
        f"Every cell (T = {long} for runs that may keep the lock, {short} otherwise). Criteria: span = "
        "X_t − X_0 ∉ span(B) or ||∇f||² changed (2¹⁰ eps); x1e-3 / x1e-1 = max|⟨A_j, X_t − X_0⟩| above "
        "1e-3 / 1e-1; subspace = P̃_t holds < 3/4 of the noise space. max‖ē‖²: over all t, and over "
        "the first tenth of the run (the 'error' part's windows are in escape.json).",
        "",
        "| part | implementation | precision | basis | N | r | σ | T | span | x1e-3 | x1e-1 | subspace "
        "| flagged | max‖ē‖² (first tenth) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in cells:
        lines.append(
            f"| {c['part']} | {c['implementation']} | {c['precision']} | {c['basis']} | {c['nodes']} | "
            f"{c['rank']} | {c['sigma']:g} | {c['steps']} | {fmt(c['span'])} | {fmt(c['x1e-3'])} | "
            f"{fmt(c['x1e-1'])} | {fmt(c['subspace'])} | {c['flagged_share']:.3f} | "
            f"{c['max_error_norm_sq']:.3g} ({c['max_error_norm_sq_first_tenth']:.3g}) |"
        )
    return "\n".join(lines)


def plot(cells, path):
    """Median escape step (x1e-3) against σ per N: paper basis with LAPACK QR and with np.matmul,
    and a random basis with the project's default.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = (
        ("paper", "lapack", "paper basis, LAPACK Householder QR"),
        ("paper", "blas", "paper basis, np.matmul (BLAS)"),
        ("random", "default", "random basis, the project's default"),
    )
    fig, axes = plt.subplots(1, 3, figsize=(14, 4), sharey=True)
    for ax, (part, impl, title) in zip(axes, panels):
        rows = [
            c
            for c in cells
            if c["part"] == part
            and c["implementation"] == impl
            and c["precision"] == "float64"
            and c["rank"] == 1
        ]
        for n in sorted({c["nodes"] for c in rows}):
            sel = sorted(
                (c for c in rows if c["nodes"] == n and c["x1e-3"]["quartiles"]), key=lambda c: c["sigma"]
            )
            if not sel:
                continue
            q = [c["x1e-3"]["quartiles"] for c in sel]
            ax.errorbar(
                [c["sigma"] for c in sel],
                [v[1] for v in q],
                yerr=[[v[1] - v[0] for v in q], [v[2] - v[1] for v in q]],
                marker="o",
                capsize=3,
                label=f"N = {n}",
                linestyle="--" if n % 2 == 0 else "-",
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("σ")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("step at which |⟨A, X_t − X_0⟩| > 1e-3 (median, IQR)")
    fig.suptitle(
        "Escape from Theorem 1's lock in float64 (the project's default never escapes in the paper basis)",
        fontsize=10,
    )
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=120)
    plt.close(fig)
