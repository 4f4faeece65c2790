"""Where compression pays: DDP step time on links of limited bandwidth (network namespaces + tbf).

N gloo processes, each in its own network namespace, joined by veth pairs to a bridge in a
hub namespace; each node's egress is shaped with a token bucket (``tc qdisc … tbf``) to each
bandwidth of ``--mbit`` (0 = unshaped veth). Every process trains the byte-level LM of
``simsgd.examples.lm`` (same model and data) with each method (plain all-reduce, PowerSGD,
PowerSGD+ τ, GaLore-style τ, rank r) and the median step time over ``--repeats`` blocks of
τ steps (one restart each; the methods' blocks interleaved) is recorded, with the bytes one
node sent per step (the hook's count).

Model beside it (α–β with one fitted constant): gloo's ring all-reduce sends
V = 2(N − 1)/N · bytes per node, so T_m(B) = c_m + V_m / (η B), with c_m the step time
measured unshaped and η (the fraction of the shaped rate the collectives reach) fitted by
least squares over all shaped points. The crossover bandwidth below which method m beats
the all-reduce is B* = (V_all-reduce − V_m) / (η (c_m − c_all-reduce)); it is also read off
the measurements (the highest measured bandwidth at which m is faster).

Isolation: the namespaces, links and addresses (10.213.7.0/24) are made by this benchmark
and removed in ``finally`` (also on Ctrl-C or SIGTERM); processes talk only inside them.
Needs root, ``ip`` and ``tc`` (iproute2) and the kernel's tbf qdisc; otherwise it exits
with the reason. The kernel here has no ``netem``, so no latency is added (veth's own).

    python -m benchmarks.bandwidth --out benchmarks/results/bandwidth      # ≈ 10 min on 2 cores
    python -m benchmarks.bandwidth --quick --out out/bandwidth             # ≈ 1 min
"""

import argparse
import contextlib
import csv
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time

import numpy as np

from simsgd._checks import check_int
from simsgd.cli import Parser, UsageError, check_out_dir, output_set, run
from simsgd.output import atomic_write_json, atomic_write_text

PREFIX = "simsgdbw"
SUBNET = "10.213.7"
PORT = 29517


def _ip(*args):
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


class Network:
    """The benchmark's namespaces: ``{PREFIX}-hub`` (a bridge) and ``{PREFIX}-0 … -{N−1}``.

    Use as a context manager; everything is removed on exit, whatever happened.
    """

    def __init__(self, nodes):
        self.nodes = nodes
        self.names = [f"{PREFIX}-{i}" for i in range(nodes)]
        self.hub = f"{PREFIX}-hub"

    def address(self, i):
        return f"{SUBNET}.{i + 1}"

    def __enter__(self):
        try:
            self._make()
        except BaseException:
            self.remove()
            raise
        return self

    def _make(self):
        self.remove()  # leftovers of a killed earlier run
        _ip("netns", "add", self.hub)
        _ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.hub, "link", "set", "br0", "up")
        for i, name in enumerate(self.names):
            _ip("netns", "add", name)
            # Both ends are created inside our namespaces, never in the host's.
            _ip(
                "link",
                "add",
                "veth0",
                "netns",
                name,
                "type",
                "veth",
                "peer",
                "name",
                f"p{i}",
                "netns",
                self.hub,
            )
            _ip("-n", self.hub, "link", "set", f"p{i}", "master", "br0", "up")
            _ip("-n", name, "addr", "add", f"{self.address(i)}/24", "dev", "veth0")
            _ip("-n", name, "link", "set", "veth0", "up")
            _ip("-n", name, "link", "set", "lo", "up")

    def shape(self, mbit):
        """Token-bucket each node's egress to ``mbit`` Mbit/s (0: remove the shaping)."""
        for name in self.names:
            if mbit:
                burst = max(16_000, int(mbit * 1e6 / 8 / 1000))  # 1 ms at the rate
                subprocess.run(
                    ["tc", "-n", name, "qdisc", "replace", "dev", "veth0", "root", "tbf", "rate",
                     f"{mbit}mbit", "burst", str(burst), "latency", "100ms"],
                    check=True, capture_output=True, text=True, timeout=30,
                )  # fmt: skip
            else:
                subprocess.run(
                    ["tc", "-n", name, "qdisc", "del", "dev", "veth0", "root"],
                    capture_output=True,
                    timeout=30,
                )

    def remove(self):
        """Delete our namespaces (their links and addresses go with them)."""
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=30).stdout
        present = {line.split()[0] for line in listed.splitlines() if line.strip()}
        for name in [*self.names, self.hub]:
            if name in present:
                subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)

    def __exit__(self, *exc):
        self.remove()
        return False


def why_not():
    """None if namespaces can be made here, else the reason."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"needs '{tool}' (apt-get install iproute2)"
    try:
        with Network(1) as net:
            net.shape(100)
    except (subprocess.CalledProcessError, OSError) as err:
        detail = getattr(err, "stderr", "") or str(err)
        return f"cannot make namespaces or shape links here: {detail.strip()}"
    return None


# ---- one process per namespace ------------------------------------------------------------


def _child(config):
    """Run in namespace ``rank``: train each method, time it; rank 0 prints the results as JSON."""
    import datetime

    import torch
    import torch.distributed as dist
    from torch import nn
    from torch.nn.parallel import DistributedDataParallel as DDP

    from simsgd.distributed.hook import PowerSGDPlusState, powersgd_plus_hook
    from simsgd.examples.bytelm import ByteLM, read_corpus, windows

    torch.set_num_threads(1)
    rank, world = config["rank"], config["world"]
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://{SUBNET}.1:{config['port']}",
        rank=rank,
        world_size=world,
        timeout=datetime.timedelta(seconds=120),
    )
    train, _, _ = read_corpus(200_000)
    generator = torch.Generator().manual_seed(rank)

    def step(model, optimizer):
        x, y = windows(train, 8, 64, generator)
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x).reshape(-1, 256), y.reshape(-1)).backward()
        optimizer.step()

    runs = {}
    for name, options in config["methods"].items():
        torch.manual_seed(0)
        model = DDP(ByteLM(64, 2, 4, 64))
        state = None
        if options is not None:
            state = PowerSGDPlusState(None, start_powerSGD_iter=2, **options)
            model.register_comm_hook(state, powersgd_plus_hook)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        for _ in range(4):  # past the warm-up, buckets rebuilt
            step(model, optimizer)
        runs[name] = (model, optimizer, state, state.bytes_sent_total if state else 0, [])
    for _ in range(config["repeats"]):  # interleaved, so a change of load hits every method alike
        for model, optimizer, _, _, times in runs.values():
            dist.barrier()
            start = time.perf_counter()
            for _ in range(config["block"]):
                step(model, optimizer)
            times.append((time.perf_counter() - start) / config["block"])
    steps = config["repeats"] * config["block"]
    out = {}
    for name, (model, _, state, sent, times) in runs.items():
        numel = sum(p.numel() for p in model.parameters())
        per_step = (state.bytes_sent_total - sent) / steps if state else 4 * numel
        out[name] = {"seconds": statistics.median(times), "bytes": per_step}
    if rank == 0:
        print(json.dumps(out))
    dist.destroy_process_group()


def _measure(net, methods, args, port):
    # Blocks of τ steps: each holds one restart, so times and bytes are averages over a period.
    config = {
        "world": net.nodes,
        "port": port,
        "methods": methods,
        "repeats": args.repeats,
        "block": args.tau,
    }
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "veth0", "OMP_NUM_THREADS": "1"}
    procs = []
    try:
        for i, name in enumerate(net.names):
            procs.append(
                subprocess.Popen(
                    [
                        "ip",
                        "netns",
                        "exec",
                        name,
                        sys.executable,
                        "-m",
                        "benchmarks.bandwidth",
                        "--child",
                        json.dumps({**config, "rank": i}),
                    ],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env=env,
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
            raise RuntimeError(
                f"rank {i} failed: {err.strip().splitlines()[-1] if err.strip() else p.returncode}"
            )
    return json.loads(outputs[0][0].strip().splitlines()[-1])


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


def fit(measured, nodes):
    """The α–β model of the module docstring from {mbit: {method: {seconds, bytes}}}.

    Returns η, {method: c_m}, {method: V_m in bytes}, {method: modelled crossover in Mbit/s or None}.
    """
    base = measured[0]
    c = {m: v["seconds"] for m, v in base.items()}
    volume = {m: 2 * (nodes - 1) / nodes * v["bytes"] for m, v in base.items()}
    xs, ys = [], []  # seconds − c_m = (V_m · 8 / (B·1e6)) / η
    for mbit, methods in measured.items():
        if mbit:
            for m, v in methods.items():
                xs.append(volume[m] * 8 / (mbit * 1e6))
                ys.append(v["seconds"] - c[m])
    xs, ys = np.array(xs), np.array(ys)
    inv_eta = float(xs @ ys / (xs @ xs))
    eta = 1 / inv_eta if inv_eta > 0 else float("nan")
    crossover = {}
    for m in c:
        extra = c[m] - c["all-reduce"]
        saved = volume["all-reduce"] - volume[m]
        crossover[m] = None if m == "all-reduce" or extra <= 0 else saved * 8 / (eta * extra) / 1e6
    return eta, c, volume, crossover


def _report(measured, args, eta, c, volume, crossover):
    methods = list(measured[0])
    bws = sorted(measured, key=lambda b: (b == 0, b))
    head = " | ".join(("unshaped" if b == 0 else f"{b} Mbit/s") for b in bws)
    lines = [
        f"N = {args.nodes} gloo processes in network namespaces (veth + bridge, egress shaped by tbf), "
        f"byte-level LM of simsgd.examples.lm (136 960 parameters, batch 8×64 per node), median of "
        f"{args.repeats} blocks of τ = {args.tau} steps; ms per step (model in brackets: c_m + V_m/(ηB), "
        f"η = {eta:.2f} fitted).",
        "",
        f"| method | bytes/node/step | {head} | crossover (measured) | crossover (model) |",
        "|---|---|" + "---|" * len(bws) + "---|---|",
    ]
    for m in methods:
        cells = []
        for b in bws:
            t = measured[b][m]["seconds"]
            model = c[m] + (volume[m] * 8 / (eta * b * 1e6) if b else 0.0)
            cells.append(f"{1e3 * t:.1f} ({1e3 * model:.1f})" if b else f"{1e3 * t:.1f}")
        faster = [b for b in bws if b and measured[b][m]["seconds"] < measured[b]["all-reduce"]["seconds"]]
        seen = "–" if m == "all-reduce" else "slower at every bandwidth"
        if m != "all-reduce" and faster:
            seen = "faster at " + ", ".join(str(b) for b in sorted(faster, reverse=True)) + " Mbit/s"
        model = "–" if crossover[m] is None else f"{crossover[m]:,.0f} Mbit/s"
        if m != "all-reduce" and crossover[m] is None:
            model = "always (no extra compute)"
        lines.append(
            f"| {m} | {measured[0][m]['bytes']:,.0f} | " + " | ".join(cells) + f" | {seen} | {model} |"
        )
    if args.lm_csv:
        lines += _time_to_target(args.lm_csv, measured, bws)
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


def _time_to_target(lm_csv, measured, bws):
    target, steps = steps_to_target(lm_csv, set(measured[0]))
    if not steps:
        return ["", f"No method of this table is in {lm_csv}; no time to target."]
    shaped = [b for b in bws if b]
    lines = [
        "",
        f"Time to the validation loss {target:.4f} (the worst final mean loss of these methods in "
        f"{lm_csv}; steps from there, mean over its seeds, × the step times above), seconds:",
        "",
        "| method | steps | " + " | ".join(f"{b} Mbit/s" for b in shaped) + " |",
        "|---|---|" + "---|" * len(shaped),
    ]
    for m, n in steps.items():
        cells = " | ".join(f"{n * measured[b][m]['seconds']:.1f}" for b in shaped)
        lines.append(f"| {m} | {n} | {cells} |")
    return lines


def _parse(argv):
    parser = Parser(prog="python -m benchmarks.bandwidth", description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--mbit", type=int, nargs="+", default=[1000, 300, 100, 30])
    parser.add_argument("--rank", type=int, default=4)
    parser.add_argument("--tau", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--timeout", type=int, default=600, help="seconds per bandwidth")
    parser.add_argument("--quick", action="store_true", help="2 nodes, 100 Mbit/s only, τ = 3, 1 block")
    parser.add_argument("--lm-csv", help="lm.csv of simsgd.examples.lm, for the time to a target loss")
    parser.add_argument("--out", default="out/bandwidth")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return args
    if args.quick:
        args.nodes, args.mbit, args.tau, args.repeats = 2, [100], 3, 1
    try:
        for name in ("nodes", "rank", "tau", "repeats", "timeout"):
            check_int(f"--{name}", getattr(args, name), 1)
        check_int("--nodes", args.nodes, 2, 200)
        for mbit in args.mbit:
            check_int("--mbit", mbit, 1)
        if args.lm_csv and not os.path.isfile(args.lm_csv):
            raise ValueError(f"--lm-csv must be an existing lm.csv, got {args.lm_csv!r}")
    except ValueError as err:
        raise UsageError(str(err)) from None
    return args


def main(argv=None) -> int:
    args = _parse(argv)
    if args.child:
        _child(json.loads(args.child))
        return 0
    out = check_out_dir(args.out, names=("bandwidth.md", "bandwidth.json"))
    reason = why_not()
    if reason is not None:
        print(f"python -m benchmarks.bandwidth: skipped: {reason}", file=sys.stderr)
        return 0
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM also cleans up
    started = time.time()
    try:
        measured = {}
        with Network(args.nodes) as net:
            for k, mbit in enumerate([0, *args.mbit]):
                net.shape(mbit)
                measured[mbit] = _measure(net, _methods(args), args, PORT + k)
                label = f"{mbit} Mbit/s" if mbit else "unshaped"
                times = ", ".join(f"{m} {1e3 * v['seconds']:.1f} ms" for m, v in measured[mbit].items())
                print(f"{label}: {times}", flush=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
    eta, c, volume, crossover = fit(measured, args.nodes)
    table = _report(measured, args, eta, c, volume, crossover)
    provenance = {
        "command": "python -m benchmarks.bandwidth " + " ".join(sys.argv[1:] if argv is None else argv),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started, 1),
        "load_average_at_start": os.getloadavg(),
        "measured": {str(k): v for k, v in measured.items()},
        "fit": {"eta": eta, "c": c, "volume_bytes": volume, "crossover_mbit": crossover},
    }
    with output_set(out) as stage:
        atomic_write_text(os.path.join(stage, "bandwidth.md"), table)
        atomic_write_json(os.path.join(stage, "bandwidth.json"), provenance)
    print(table, end="")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(run(main, prog="python -m benchmarks.bandwidth"))
