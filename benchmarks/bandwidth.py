"""Where compression pays: DDP step time on shaped links, with spread, compute and communication apart.

N gloo processes, each in its own network namespace (:mod:`benchmarks._netns`), train the
byte-level LM of :mod:`simsgd.examples.bytelm` with each method (plain all-reduce,
PowerSGD, PowerSGD+ τ, GaLore-style τ; rank r) while each node's egress is shaped to each
bandwidth of ``--mbit`` (tbf) and left unshaped. For every (N, bandwidth, method) cell
``--repeats`` interleaved rounds time three blocks of τ steps each (one restart per block):
the real step; the compute alone (the hook with its collectives skipped; for the
all-reduce, DDP with a hook that returns the bucket as it is); the communication alone
(the messages the step sends, recorded, replayed as bare all-reduces). Each block's time
is the slowest node's. Cells report median and interquartile range; a method's crossover
with the all-reduce comes from the medians (linear in 1/B between the two bandwidths
where the sign of the difference changes) with a bootstrap interval, or "not resolved".

Load: before anything starts the benchmark watches the CPUs for 3 s; if other work uses
more than ``--max-busy`` cores it refuses (exit 1), unless ``--allow-loaded``, which
marks every output "loaded". Latency: ``--delay-ms`` adds a one-way delay with netem
where the kernel has it (else the run refuses, saying so); this one has not, so the
default runs add none (veth's own latency, measured by a one-float all-reduce probe).

Writes ``bandwidth.md`` (tables), ``bandwidth.json`` (every repeat, the load, provenance)
and ``bandwidth.png`` into ``--out``. Needs root, ``ip`` and ``tc``; otherwise it says why
and exits 0 without measuring.

    python -m benchmarks.bandwidth --quick --allow-loaded --out out/bandwidth     # ≈ 1 min
    python -m benchmarks.bandwidth --out benchmarks/results/bandwidth            # quiet machine
"""

import argparse
import contextlib
import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np

from simsgd._checks import check_int, check_real
from simsgd.cli import Parser, UsageError, check_out_dir, output_set, run
from simsgd.examples._load import LoadSampler, busy_cores, cores
from simsgd.output import atomic_write_json, atomic_write_text
from simsgd.output import provenance as make_provenance

from ._bw_analysis import crossover, spread
from ._netns import Network, why_no_netem, why_not

PORT = 29517
NAMES = ("bandwidth.md", "bandwidth.json", "bandwidth.png")
QUANTITIES = ("step", "compute", "comm")
QUICK = dict(nodes=[2], mbit=[100], tau=3, repeats=5)
MAX_NODES = 16  # one torch process per node (≈ 0.35 GB each)


def _parser():
    parser = Parser(prog="python -m benchmarks.bandwidth", description=__doc__.split("\n")[0])
    add = parser.add_argument
    add("--nodes", type=int, nargs="+", default=[2, 4], help=f"process counts N, each 2..{MAX_NODES}")
    add(
        "--mbit",
        type=int,
        nargs="+",
        default=[1000, 300, 100, 30, 10],
        help="shaped rates (unshaped is added)",
    )
    add("--rank", type=int, default=4)
    add("--tau", type=int, default=10, help="PowerSGD+ and GaLore-style period; also the block length")
    add("--repeats", type=int, default=7, help="rounds per cell (≥ 5 for a spread)")
    add("--delay-ms", type=float, default=0.0, help="one-way delay per node (needs netem)")
    add("--max-busy", type=float, default=0.25, help="cores other work may use before the run refuses")
    add("--allow-loaded", action="store_true", help="run on a busy machine, marking the results 'loaded'")
    add("--timeout", type=int, default=900, help="seconds per (N, bandwidth) launch")
    add("--quick", action="store_true", help="other defaults: N = 2, 100 Mbit/s, τ = 3, 5 repeats")
    add("--lm-csv", help="lm.csv of simsgd.examples.lm, for the time to a target loss")
    add("--out", default="out/bandwidth")
    add(
        "--analyse",
        action="store_true",
        help="only rewrite bandwidth.md and .png from --out's bandwidth.json",
    )
    return parser


def _parse(argv):
    parser = _parser()
    quick = argparse.ArgumentParser(add_help=False)
    quick.add_argument("--quick", action="store_true")
    if quick.parse_known_args(argv)[0].quick:
        parser.set_defaults(**QUICK)
    args = parser.parse_args(argv)
    try:
        for n in args.nodes:
            check_int("--nodes", n, 2, MAX_NODES)
        if len(set(args.nodes)) != len(args.nodes):
            raise ValueError(f"--nodes must be distinct, got {args.nodes}")
        for mbit in args.mbit:
            check_int("--mbit", mbit, 1, 100_000)
        if len(set(args.mbit)) != len(args.mbit):
            raise ValueError(f"--mbit must be distinct, got {args.mbit}")
        check_int("--rank", args.rank, 1, 64)
        check_int("--tau", args.tau, 1, 1000)
        check_int("--repeats", args.repeats, 1, 1000)
        check_int("--timeout", args.timeout, 1, 86_400)
        check_real("--delay-ms", args.delay_ms, 0.0, 10_000.0)
        check_real("--max-busy", args.max_busy, 0.0, 1024.0)
        if args.lm_csv and not os.path.isfile(args.lm_csv):
            raise ValueError(f"--lm-csv must be an existing lm.csv, got {args.lm_csv!r}")
    except ValueError as err:
        raise UsageError(str(err)) from None
    return args


def _methods(args):
    r, tau = args.rank, args.tau
    return {
        "all-reduce": None,
        f"PowerSGD r={r}": dict(matrix_approximation_rank=r),
        f"PowerSGD+ r={r} τ={tau}": dict(matrix_approximation_rank=r, restart_period=tau),
        f"GaLore-style r={r} τ={tau}": dict(
            matrix_approximation_rank=r,
            restart_period=tau,
            between_restarts="fixed",
            use_error_feedback=False,
        ),
    }


def _measure(net, methods, args, port):
    """Launch one child per namespace; rank 0's JSON (see :mod:`benchmarks._bw_child`)."""
    config = {
        "world": net.nodes, "port": port, "methods": methods, "repeats": args.repeats,
        "block": args.tau, "timeout": args.timeout,
    }  # fmt: skip
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "veth0", "OMP_NUM_THREADS": "1"}
    procs = []
    try:
        for i, name in enumerate(net.names):
            command = ["ip", "netns", "exec", name, sys.executable, "-m", "benchmarks._bw_child"]
            procs.append(
                subprocess.Popen(
                    [*command, json.dumps({**config, "rank": i})],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env=env,
                    preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),  # quiet on Ctrl-C
                )  # fmt: skip
            )
        outputs = [p.communicate(timeout=args.timeout) for p in procs]
    finally:
        for p in procs:  # only the processes this call started
            if p.poll() is None:
                p.kill()
                p.wait()
    for i, (p, (_, err)) in enumerate(zip(procs, outputs)):
        if p.returncode != 0:
            lines = err.strip().splitlines()
            raise RuntimeError(f"rank {i} failed: {lines[-1] if lines else p.returncode}")
    return json.loads(outputs[0][0].strip().splitlines()[-1])


def _load_before(args):
    """The machine's state before any work: busy cores (3 s), load average, and the verdict."""
    busy = busy_cores(3.0)
    state = {"busy_cores": None if busy is None else round(busy, 2), "load_average": os.getloadavg()}
    state["cores"] = cores()
    loaded = busy is None or busy > args.max_busy
    if loaded and not args.allow_loaded:
        what = "could not be measured" if busy is None else f"{busy:.2f} cores were busy over 3 s"
        raise RuntimeError(
            f"refused: the machine is not quiet ({what}, more than --max-busy {args.max_busy:g}; "
            f"load average {state['load_average'][0]:.2f} on {state['cores']} cores); rerun when it is, "
            "or pass --allow-loaded to mark the results 'loaded'"
        )
    state["status"] = "loaded" if loaded else "quiet"
    return state


def _cell_table(measured, args, nodes):
    """Markdown for one N: per method and quantity, median [q1–q3] ms per step at each bandwidth."""
    cells = measured[nodes]
    bws = sorted(cells, key=lambda b: (b == 0, b))
    head = " | ".join(("unshaped" if b == 0 else f"{b} Mbit/s") for b in bws)
    lines = [
        f"| method | bytes/node/step | messages/step | time | {head} |",
        "|---|---|---|---|" + "---|" * len(bws),
    ]
    for m in cells[bws[0]]["methods"]:
        info = cells[bws[0]]["methods"][m]
        for k, q in enumerate(QUANTITIES):
            row = []
            for b in bws:
                s = spread(cells[b]["methods"][m][q])
                row.append(f"{1e3 * s['median']:.1f} [{1e3 * s['q1']:.1f}–{1e3 * s['q3']:.1f}]")
            first = f"| {m} | {info['bytes']:,.0f} | {info['messages']:.2f} |" if k == 0 else "| | | |"
            lines.append(f"{first} {q} | " + " | ".join(row) + " |")
    return lines


def _crossovers(measured, nodes):
    cells = measured[nodes]
    shaped = sorted(b for b in cells if b)
    out = {}
    if len(shaped) < 1:
        return out
    reference = [cells[b]["methods"]["all-reduce"]["step"] for b in shaped]
    for m in cells[shaped[0]]["methods"]:
        if m != "all-reduce":
            out[m] = crossover([cells[b]["methods"][m]["step"] for b in shaped], reference, shaped)
    return out


def _report(measured, args, load, netem, crossovers):
    latency = f"netem delay {args.delay_ms:g} ms" if args.delay_ms else f"none added ({netem})"
    mark = " **(loaded: other work was using the CPUs; treat the times as upper bounds)**"
    lines = [
        f"Byte-level LM (136 960 parameters, batch 8×64 per node) on N gloo processes in network "
        f"namespaces, egress shaped by tbf; {args.repeats} interleaved rounds per cell of blocks of "
        f"τ = {args.tau} steps (one restart each); ms per step, median [interquartile range] over "
        f"the rounds; *step*: the real step, *compute*: the hook with its collectives skipped, "
        f"*comm*: the recorded messages replayed alone. Machine: {load['before']['status']} before the "
        f"run ({load['before']['busy_cores']} of {load['before']['cores']} cores busy; load average "
        f"{load['before']['load_average'][0]:.2f}), load average during it {load['during']['median']} "
        f"(median; ours included).{mark if load['before']['status'] == 'loaded' else ''} "
        f"Latency: {latency}.",
    ]
    for nodes in sorted(measured):
        probe = [
            f"{f'{b} Mbit/s' if b else 'unshaped'} {1e6 * measured[nodes][b]['latency_probe_seconds']:.0f} µs"
            for b in sorted(measured[nodes], key=lambda b: (b == 0, b))
        ]
        lines += ["", f"### N = {nodes}", "", *_cell_table(measured, args, nodes), ""]
        lines.append("One-float all-reduce (latency probe), median: " + ", ".join(probe) + ".")
        lines += [
            "",
            "| method | crossover with the all-reduce (median step times; 95% bootstrap interval) |",
            "|---|---|",
        ]
        for m, c in crossovers[nodes].items():
            lines.append(f"| {m} | {c['text']} |")
    if args.lm_csv:
        lines += _time_to_target(args.lm_csv, measured)
    return "\n".join(lines) + "\n"


def steps_to_target(lm_csv, labels):
    """From the LM comparison's CSV: the target (the worst final mean validation loss among
    ``labels``, so every one reaches it) and the first evaluated step at which each label's
    mean over seeds is at or below it.
    """
    from simsgd.examples.lm_analysis import label

    curves = {}
    with open(lm_csv, newline="") as f:
        for row in csv.DictReader(f):
            name = label(row["method"], int(row["rank"]), int(row["tau"]))
            if name in labels:
                curves.setdefault(name, {}).setdefault(int(row["step"]), []).append(
                    float(row["validation_loss"])
                )
    means = {k: sorted((step, float(np.mean(v))) for step, v in c.items()) for k, c in curves.items()}
    if not means:
        return None, {}
    target = max(curve[-1][1] for curve in means.values())
    return target, {k: next(step for step, loss in curve if loss <= target) for k, curve in means.items()}


def _time_to_target(lm_csv, measured):
    nodes = max(measured)
    cells = measured[nodes]
    shaped = sorted(b for b in cells if b)
    target, steps = steps_to_target(lm_csv, set(cells[shaped[0]]["methods"]) if shaped else set())
    if not steps:
        return ["", f"No method of this table is in {lm_csv}; no time to target."]
    lines = [
        "",
        f"Time to the validation loss {target:.4f} at N = {nodes} (the worst final mean loss of these "
        f"methods in {lm_csv}; steps from there × the median step times above), seconds:",
        "",
        "| method | steps | " + " | ".join(f"{b} Mbit/s" for b in shaped) + " |",
        "|---|---|" + "---|" * len(shaped),
    ]
    for m, n in steps.items():
        cells_m = " | ".join(f"{n * spread(cells[b]['methods'][m]['step'])['median']:.1f}" for b in shaped)
        lines.append(f"| {m} | {n} | {cells_m} |")
    return lines


def _plot(measured, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from simsgd.output import atomic_savefig

    fig, axes = plt.subplots(1, len(measured), figsize=(6.5 * len(measured), 4.6), squeeze=False)
    colors = ["black", "tab:blue", "tab:red", "tab:orange"]
    for ax, nodes in zip(axes[0], sorted(measured)):
        cells = measured[nodes]
        shaped = sorted(b for b in cells if b)
        for color, m in zip(colors, cells[shaped[0]]["methods"] if shaped else []):
            for q, style in (("step", "o-"), ("comm", "x:")):
                s = [spread(cells[b]["methods"][m][q]) for b in shaped]
                med = np.array([1e3 * v["median"] for v in s])
                err = np.array(
                    [[1e3 * (v["median"] - v["q1"]) for v in s], [1e3 * (v["q3"] - v["median"]) for v in s]]
                )
                ax.errorbar(shaped, med, yerr=err, fmt=style, color=color, capsize=2, lw=1.2,
                            label=f"{m} ({q})")  # fmt: skip
        ax.set(xscale="log", yscale="log", xlabel="egress rate per node (Mbit/s)", ylabel="ms per step",
               title=f"N = {nodes}: median and interquartile range")  # fmt: skip
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=6)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=110, metadata={"Software": None})
    plt.close(fig)


def main(argv=None) -> int:
    args = _parse(argv)
    out = check_out_dir(args.out, names=NAMES)
    if args.analyse:
        return _analyse(out)
    reason = why_not()
    if reason is not None:
        print(f"python -m benchmarks.bandwidth: skipped: {reason}", file=sys.stderr)
        return 0
    netem = why_no_netem() or "netem available"
    if args.delay_ms and netem != "netem available":
        raise RuntimeError(f"cannot add --delay-ms {args.delay_ms:g}: {netem}")
    load = {"before": _load_before(args)}
    sampler = LoadSampler(period=10.0)
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM also cleans up
    started = time.time()
    measured = {}
    try:
        for nodes in args.nodes:
            measured[nodes] = {}
            with Network(nodes) as net:
                for k, mbit in enumerate([0, *args.mbit]):
                    net.shape(mbit, args.delay_ms)
                    sampler()
                    measured[nodes][mbit] = _measure(net, _methods(args), args, PORT + k)
                    sampler()
                    label = f"{mbit} Mbit/s" if mbit else "unshaped"
                    times = ", ".join(
                        f"{m} {1e3 * spread(v['step'])['median']:.1f} ms"
                        for m, v in measured[nodes][mbit]["methods"].items()
                    )
                    print(f"N = {nodes}, {label}: {times}", flush=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
    load["during"] = sampler.summary()
    load["after_busy_cores"] = busy_cores(3.0)
    crossovers = {n: _crossovers(measured, n) for n in measured}
    table = _report(measured, args, load, netem, crossovers)
    command = "python -m benchmarks.bandwidth " + " ".join(sys.argv[1:] if argv is None else argv)
    record = make_provenance(command, **{k: v for k, v in vars(args).items() if k != "out"})
    record.update(
        seconds=round(time.time() - started, 1),
        load=load,
        status=load["before"]["status"],
        netem=netem,
        measured={str(n): {str(b): v for b, v in cells.items()} for n, cells in measured.items()},
        crossover={str(n): c for n, c in crossovers.items()},
    )
    with output_set(out) as stage:
        atomic_write_text(os.path.join(stage, "bandwidth.md"), table)
        atomic_write_json(os.path.join(stage, "bandwidth.json"), record)
        _plot(measured, os.path.join(stage, "bandwidth.png"))
    print(table, end="")
    return 0


def _analyse(out):
    """Rewrite ``bandwidth.md`` and ``bandwidth.png`` from ``out``/bandwidth.json (no measuring)."""
    path = os.path.join(out, "bandwidth.json")
    try:
        with open(path) as f:
            record = json.load(f)
        measured = {int(n): {int(b): v for b, v in cells.items()} for n, cells in record["measured"].items()}
        args = argparse.Namespace(**record["settings"])
    except (OSError, ValueError, KeyError) as err:
        raise UsageError(f"argument --analyse: cannot read a bandwidth.json in {out!r} ({err})") from None
    crossovers = {n: _crossovers(measured, n) for n in measured}
    table = _report(measured, args, record["load"], record["netem"], crossovers)
    with output_set(out) as stage:
        atomic_write_text(os.path.join(stage, "bandwidth.md"), table)
        _plot(measured, os.path.join(stage, "bandwidth.png"))
    print(table, end="")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(run(main, prog="python -m benchmarks.bandwidth"))
