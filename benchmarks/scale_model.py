"""A scale model — a model, not a measurement — of when PowerSGD / PowerSGD+ pay, for real layer shapes.

From this machine's measurements: the per-message latency α and bandwidth efficiency η
(fitted to the communication-alone timings of :mod:`benchmarks.bandwidth`) and the hook's
compression compute per matrix shape (:mod:`benchmarks.compression_cost`, one CPU thread;
GPU: the marked place, not measured), it predicts the communication + compression time per
step and the break-even link rate of PowerSGD r = 4 and PowerSGD+ r = 4 (τ = 10, 100)
against the all-reduce, ring and tree, for GPT-2 124M, a 1.1B LLaMA-shaped model and
LLaMA-7B over N = 8–1024 nodes and 1–400 Gbit/s (:mod:`benchmarks._scale_predict`).

Before extrapolating it is checked against every cell of the bandwidth benchmark: the
messages and bytes it derives from the layer shapes against those the hook recorded, and
its step, compute and communication times against the measured medians (residuals
written to ``scale_validation.md``). Compute on N processes sharing fewer cores is scaled
by N/cores there (time slicing); the forward/backward time is the all-reduce's measured
compute alone.

Writes into ``--out``: ``scale_validation.md``, ``scale_table.md``, ``scale_model.json`` and
``scale_model.png``; ``docs/scale-model.md`` includes the tables (``python -m
benchmarks.doc_tables`` copies them in).

    python -m benchmarks.scale_model                                  # from the committed results
    python -m benchmarks.scale_model --bandwidth out/bandwidth/bandwidth.json --compute \\
        out/scale-model/compute_cpu.json --out out/scale-model        # from quick runs
"""

import json
import math
import os
import sys

import numpy as np

from simsgd.cli import Parser, UsageError, check_out_dir, output_set, run
from simsgd.output import atomic_write_json, atomic_write_text
from simsgd.output import provenance as make_provenance

from ._scale_fit import fit_comm, fit_compute
from ._scale_predict import ALGORITHMS, break_even, predict, step_traffic
from ._scale_shapes import MODELS, bytelm_shapes, parameters

NAMES = ("scale_validation.md", "scale_table.md", "scale_model.json", "scale_model.png")
RANK, TAUS = 4, (10, 100)
NODES = (8, 16, 32, 64, 128, 256, 512, 1024)
GBITS = (1, 10, 25, 100, 400)
ASSUMED_ALPHA = 5e-6  # s per hop: typical of RDMA fabrics with NCCL; an assumption, not measured here
METHODS = [("PowerSGD", None)] + [("PowerSGD+", t) for t in TAUS]


def _label(method, tau):
    return f"{method} r={RANK}" + (f" τ={tau}" if tau else "")


def _bandwidth_method(name):
    """('PowerSGD+', 10) from a bandwidth benchmark label such as 'PowerSGD+ r=4 τ=10'."""
    parts = name.split()
    tau = next((int(p[2:]) for p in parts if p.startswith("τ=")), None)
    return parts[0], tau


def validate(bandwidth, compute):
    """Every cell of the bandwidth benchmark against the model: list of dicts and the fit."""
    comm = fit_comm(bandwidth["measured"])
    shapes = bytelm_shapes()
    cores = bandwidth.get("load", {}).get("before", {}).get("cores", 2)
    model_comm = {(c["nodes"], c["mbit"], c["method"]): c for c in comm["cells"]}
    rows = []
    for nodes, cells in bandwidth["measured"].items():
        n = int(nodes)
        slicing = max(1.0, n / cores)
        for mbit, cell in cells.items():
            base = float(np.median(cell["methods"]["all-reduce"]["compute"]))
            for name, v in cell["methods"].items():
                method, tau = _bandwidth_method(name)
                messages, volume, hook = step_traffic(shapes, method, RANK, tau, compute)
                predicted_comm = model_comm[(n, int(mbit), name)]["model"]
                predicted_compute = base + slicing * hook
                measured = {q: float(np.median(v[q])) for q in ("step", "compute", "comm")}
                predicted = {"step": predicted_compute + predicted_comm, "compute": predicted_compute,
                             "comm": predicted_comm}  # fmt: skip
                rows.append(dict(
                    nodes=n, mbit=int(mbit), method=name, measured=measured, predicted=predicted,
                    residual={q: predicted[q] / measured[q] - 1 for q in measured},
                    accounting_ok=bool(math.isclose(messages, v["messages"], rel_tol=1e-9)
                                       and math.isclose(volume, v["recorded_bytes"], rel_tol=1e-9)),
                ))  # fmt: skip
    return rows, comm


def _validation_table(rows, comm, compute, bandwidth):
    summary = {
        q: (float(np.median([abs(r["residual"][q]) for r in rows])), max(abs(r["residual"][q]) for r in rows))
        for q in ("step", "compute", "comm")
    }
    status = bandwidth.get("status", "?")
    ok = all(r["accounting_ok"] for r in rows)
    probe = [
        c["latency_probe_seconds"] / (2 * (int(n) - 1))
        for n, cells in bandwidth["measured"].items()
        for c in cells.values()
    ]
    lines = [
        f"Scale model against every cell of the bandwidth benchmark ({bandwidth.get('command', '?')}, "
        f"machine {status}). Fitted on its communication-alone medians (shaped cells): α = "
        f"{1e6 * comm['alpha']:.0f} µs per hop (the one-float probe gives {1e6 * min(probe):.0f}–"
        f"{1e6 * max(probe):.0f} µs), η = {comm['eta']:.2f}, unshaped veth ≈ "
        f"{comm['unshaped_mbit']:,.0f} Mbit/s. "
        f"Compute per matrix from {compute.device} (one thread; {compute.load}). Messages and bytes "
        f"derived from the layer shapes {'equal' if ok else '**differ from**'} those the hook recorded "
        "in every cell.",
        "",
        "Residual = model / measured − 1 of the median ms per step. Median |residual| (worst): "
        + "; ".join(f"{q} {100 * a:.0f}% ({100 * b:.0f}%)" for q, (a, b) in summary.items()) + ".",
        "",
        "| N | link | method | step: measured → model | compute: measured → model | comm: measured → model |",
        "|---|---|---|---|---|---|",
    ]  # fmt: skip
    for r in sorted(rows, key=lambda r: (r["nodes"], r["mbit"] == 0, r["mbit"])):
        cells = [
            f"{1e3 * r['measured'][q]:.1f} → {1e3 * r['predicted'][q]:.1f} ({100 * r['residual'][q]:+.0f}%)"
            for q in ("step", "compute", "comm")
        ]
        link = f"{r['mbit']} Mbit/s" if r["mbit"] else "unshaped"
        lines.append(f"| {r['nodes']} | {link} | {r['method']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n", summary


def extrapolate(comm, compute, alpha=None):
    """{model: {label: {"traffic", "time": {algo: {N: {Gbit: s}}}, "break_even": {algo: {N: Gbit}}}}}."""
    alpha = comm["alpha"] if alpha is None else alpha
    eta = min(comm["eta"], 1.0)
    out = {}
    for name, shapes in MODELS.items():
        ref = step_traffic(shapes, "all-reduce", RANK, None, compute)
        rows = {
            "all-reduce": ref,
            **{_label(m, t): step_traffic(shapes, m, RANK, t, compute) for m, t in METHODS},
        }
        out[name] = {}
        for label, traffic in rows.items():
            out[name][label] = {
                "traffic": traffic,
                "time": {a: {n: {g: predict(traffic, n, g, alpha, eta, a) for g in GBITS} for n in NODES}
                         for a in ALGORITHMS},
                "break_even": {a: {n: break_even(traffic, ref, n, alpha, eta, a) for n in NODES}
                               for a in ALGORITHMS} if label != "all-reduce" else None,
            }  # fmt: skip
    return out


def _gbit(value):
    if math.isinf(value):
        return "always"
    if value == 0:
        return "never"
    return f"{value:.3g}"


def _tables(pred, assumed, comm, compute):
    n_show, g_show = (8, 64, 1024), (1, 10, 100, 400)
    lines = [
        f"**Model, not measurement.** α = {1e6 * comm['alpha']:.0f} µs per hop and η = "
        f"{min(comm['eta'], 1.0):.2f} as fitted on this machine's gloo over veth; compression compute "
        f"from {compute.device}, one thread ({compute.load}; GPU: not measured); float32 gradients; "
        "forward/backward excluded (equal for all methods); no overlap of communication with backward.",
        "",
        "Break-even link rate (Gbit/s per node): the method's step is shorter than the all-reduce's "
        "(same algorithm) below it; *always*: at every rate; *never*: at no rate.",
        "",
        "| model (parameters) | method | floats/node/step | compute s/step | "
        + " | ".join(f"N={n} {a}" for n in n_show for a in ALGORITHMS)
        + " |",
        "|---|---|---|---|" + "---|" * (len(n_show) * len(ALGORITHMS)),
    ]
    for name, rows in pred.items():
        size = f"{name} ({parameters(MODELS[name]) / 1e6:,.0f}M)"
        for label, v in rows.items():
            if v["break_even"] is None:
                continue
            cells = " | ".join(_gbit(v["break_even"][a][n]) for n in n_show for a in ALGORITHMS)
            lines.append(
                f"| {size} | {label} | {v['traffic'][1] / 4:,.0f} | {v['traffic'][2]:.3g} | {cells} |"
            )
    lines += [
        "",
        "Communication + compression seconds per step at N = 64 (ring | tree):",
        "",
        "| model | method | " + " | ".join(f"{g} Gbit/s" for g in g_show) + " |",
        "|---|---|" + "---|" * len(g_show),
    ]
    for name, rows in pred.items():
        for label, v in rows.items():
            cells = " | ".join(
                f"{v['time']['ring'][64][g]:.3g} \\| {v['time']['tree'][64][g]:.3g}" for g in g_show
            )
            lines.append(f"| {name} | {label} | {cells} |")
    lines += [
        "",
        f"Sensitivity, **assumed** α = {1e6 * ASSUMED_ALPHA:.0f} µs per hop (typical of RDMA fabrics; not "
        "measured here), everything else as above: break-even Gbit/s.",
        "",
        "| model | method | " + " | ".join(f"N={n} {a}" for n in n_show for a in ALGORITHMS) + " |",
        "|---|---|" + "---|" * (len(n_show) * len(ALGORITHMS)),
    ]
    for name, rows in assumed.items():
        for label, v in rows.items():
            if v["break_even"] is not None:
                cells = " | ".join(_gbit(v["break_even"][a][n]) for n in n_show for a in ALGORITHMS)
                lines.append(f"| {name} | {label} | {cells} |")
    return "\n".join(lines) + "\n"  # fmt: skip


def _plot(pred, rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from simsgd.output import atomic_savefig

    colors = {"all-reduce": "black", f"PowerSGD r={RANK}": "tab:blue", f"PowerSGD+ r={RANK} τ=10": "tab:red",
              f"PowerSGD+ r={RANK} τ=100": "salmon"}  # fmt: skip
    fig, axes = plt.subplots(2, len(pred) + 1, figsize=(5 * (len(pred) + 1), 8.5))
    for k, (name, methods) in enumerate(pred.items()):
        top, bottom = axes[0, k], axes[1, k]
        for label, v in methods.items():
            for algo, style in (("ring", "-"), ("tree", "--")):
                top.plot(GBITS, [v["time"][algo][64][g] for g in GBITS], style, color=colors[label],
                         label=f"{label} ({algo})")  # fmt: skip
                if v["break_even"] is not None:
                    be = [min(v["break_even"][algo][n], 1e4) for n in NODES]
                    bottom.plot(
                        NODES, be, style, marker="o", ms=3, color=colors[label], label=f"{label} ({algo})"
                    )
        top.set(xscale="log", yscale="log", xlabel="link rate per node (Gbit/s)", ylabel="s per step (model)",
                title=f"{name}, N = 64: comm + compression")  # fmt: skip
        bottom.set(xscale="log", yscale="log", xlabel="nodes N", ylabel="break-even rate (Gbit/s, model)",
                   title=f"{name}: compression pays below the line")  # fmt: skip
        for ax in (top, bottom):
            ax.grid(alpha=0.3, which="both")
        top.legend(fontsize=6)
    ax = axes[0, -1]
    for q, marker in (("step", "o"), ("compute", "s"), ("comm", "x")):
        ax.scatter([1e3 * r["measured"][q] for r in rows], [1e3 * r["predicted"][q] for r in rows], s=14,
                   marker=marker, label=q)  # fmt: skip
    lims = [min(ax.get_xlim()[0], ax.get_ylim()[0]), max(ax.get_xlim()[1], ax.get_ylim()[1])]
    ax.plot(lims, lims, color="grey", lw=0.8)
    ax.set(xscale="log", yscale="log", xlabel="measured ms per step (median)", ylabel="model ms per step",
           title="validation: every bandwidth cell")  # fmt: skip
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")
    axes[1, -1].axis("off")
    note = "A MODEL, NOT A MEASUREMENT:\nα, η from gloo over veth on this machine;\n"
    note += "compression compute from one CPU thread\n(GPU compute not measured)."
    axes[1, -1].text(0, 0.5, note, fontsize=10)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=100, metadata={"Software": None})
    plt.close(fig)


def main(argv=None) -> int:
    parser = Parser(prog="python -m benchmarks.scale_model", description=__doc__.split("\n")[0])
    parser.add_argument("--bandwidth", default="benchmarks/results/bandwidth/bandwidth.json")
    parser.add_argument("--compute", default="benchmarks/results/scale-model/compute_cpu.json")
    parser.add_argument("--out", default="benchmarks/results/scale-model")
    args = parser.parse_args(argv)
    records = {}
    for option in ("bandwidth", "compute"):
        path = getattr(args, option)
        try:
            with open(path) as f:
                records[option] = json.load(f)
        except (OSError, ValueError) as err:
            raise UsageError(f"argument --{option}: cannot read {path!r} ({err})") from None
    out = check_out_dir(args.out, names=NAMES)
    compute = fit_compute(records["compute"])
    rows, comm = validate(records["bandwidth"], compute)
    validation, summary = _validation_table(rows, comm, compute, records["bandwidth"])
    pred = extrapolate(comm, compute)
    assumed = extrapolate(comm, compute, alpha=ASSUMED_ALPHA)
    table = _tables(pred, assumed, comm, compute)
    command = "python -m benchmarks.scale_model " + " ".join(sys.argv[1:] if argv is None else argv)
    record = make_provenance(command, bandwidth=args.bandwidth, compute=args.compute)
    record.update(
        label="a model, not a measurement",
        comm={k: comm[k] for k in ("alpha", "eta", "unshaped_mbit")},
        compute={"device": compute.device, "overhead": compute.overhead,
                 "coefficients": {k: list(map(float, v)) for k, v in compute.coef.items()},
                 "fit_residuals": compute.fit_residuals},
        validation={"summary": summary, "cells": rows},
        predictions={name: {label: {"traffic": v["traffic"], "break_even": v["break_even"]}
                            for label, v in methods.items()} for name, methods in pred.items()},
    )  # fmt: skip
    with output_set(out) as stage:
        atomic_write_text(os.path.join(stage, "scale_validation.md"), validation)
        atomic_write_text(os.path.join(stage, "scale_table.md"), table)
        atomic_write_json(os.path.join(stage, "scale_model.json"), record)
        _plot(pred, rows, os.path.join(stage, "scale_model.png"))
    print(validation + "\n" + table, end="")
    return 0


if __name__ == "__main__":
    sys.exit(run(main, prog="python -m benchmarks.scale_model"))
