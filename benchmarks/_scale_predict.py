"""The scale model's predictions: per-step communication and compression time, and break-even rates.

A step of a method on N nodes with link rate B (bit/s) is modelled as

    T = T_fb + C + M·L(N) + 2(N − 1)/N · 8V/(ηB),

T_fb the forward/backward/optimizer time (the same for every method, so it cancels in every
comparison here, and is left out), C the hook's compression compute per step
(:class:`~benchmarks._scale_fit.ComputeModel`), M messages and V bytes per step (from the
layer shapes, DDP's buckets and the hook's rules), L(N) the per-message latency of the
all-reduce algorithm: ring 2(N − 1)α, tree 2⌈log₂N⌉α (a log-depth, bandwidth-optimal
all-reduce, as recursive halving–doubling or NCCL's pipelined trees). No overlap of
communication with the backward pass is modelled (DDP overlaps the all-reduce's buckets
with backward, which favours the all-reduce); floats are sent as float32.

Per-step averages: PowerSGD+ τ = ((τ − 1)·power step + restart)/τ, its restart
all-reducing the whole bucket (m n floats per matrix) and computing an SVD; the GaLore-style
baseline likewise with fixed-basis steps. Break-even: the rate B* below which a method's
step is shorter than the all-reduce's (same algorithm), B* = ΔW/(ΔL + C) with ΔW the
saved bandwidth term × B and ΔL the extra latency; "always" when ΔL + C ≤ 0.
"""

import math

__all__ = ["buckets", "step_traffic", "predict", "break_even", "ALGORITHMS"]

ALGORITHMS = ("ring", "tree")
FIRST_BUCKET, BUCKET = 1 * 2**20, 25 * 2**20  # DDP's default bucket caps (bytes)
MIN_COMPRESSION_RATE = 2  # PowerSGDState's default


def buckets(model):
    """DDP buckets of float32 gradients: [(matrices, other floats)], greedily packed in order."""
    matrices, other = model
    out, current, size = [], [[], 0], 0
    for item in [*[("m", s) for s in matrices], ("o", other)]:
        floats = item[1][0] * item[1][1] if item[0] == "m" else item[1]
        cap = FIRST_BUCKET if not out else BUCKET
        if size and 4 * (size + floats) > cap:
            out.append(current)
            current, size = [[], 0], 0
        if item[0] == "m":
            current[0].append(item[1])
        else:
            current[1] += floats
        size += floats
    out.append(current)
    return out


def _compressed(m, n, r):
    return (m + n) * min(r, m, n) * MIN_COMPRESSION_RATE < m * n


def step_traffic(model, method, rank=4, tau=None, compute=None):
    """(messages, bytes, compute seconds) one node spends on one step, averaged over a period.

    Parameters
    ----------
    model : (matrices, other)
    method : {"all-reduce", "PowerSGD", "PowerSGD+", "GaLore-style"}
    rank : int
    tau : int or None
        Period of PowerSGD+ and the GaLore-style baseline.
    compute : ComputeModel or None
        None: compute counted as 0.
    """
    parts = buckets(model)
    total = sum(m * n for ms, _ in parts for m, n in ms) + sum(o for _, o in parts)
    if method == "all-reduce":
        return len(parts), 4.0 * total, 0.0
    cost = (lambda kind, m, n: compute.matrix(kind, m, n)) if compute else (lambda *a: 0.0)
    head = (lambda kind: compute.bucket(kind)) if compute else (lambda kind: 0.0)
    kinds = {"power": [0, 0.0, 0.0], "restart": [0, 0.0, 0.0], "fixed": [0, 0.0, 0.0]}
    for ms, other in parts:
        plain = other + sum(m * n for m, n in ms if not _compressed(m, n, rank)) + 1  # + the flag
        small = [(m, n, min(rank, m, n)) for m, n in ms if _compressed(m, n, rank)]
        bucket_floats = plain - 1 + sum(m * n for m, n, _ in small) + 1
        for kind, messages, floats in (
            ("power", 3, plain + sum((m + n) * r for m, n, r in small)),
            ("restart", 1, bucket_floats),
            ("fixed", 2, plain + sum(n * r for m, n, r in small)),
        ):
            k = kinds[kind]
            k[0] += messages
            k[1] += 4.0 * floats
            k[2] += head(kind) + sum(cost(kind, m, n) for m, n, _ in small)
    between = "fixed" if method == "GaLore-style" else "power"
    if method == "PowerSGD" or not tau:
        return tuple(kinds["power"])
    return tuple(((tau - 1) * a + b) / tau for a, b in zip(kinds[between], kinds["restart"]))


def predict(traffic, nodes, gbit, alpha, eta, algorithm="ring"):
    """Seconds per step (communication + compression) for ``traffic`` from :func:`step_traffic`."""
    messages, volume, compute = traffic
    return compute + messages * _latency(nodes, alpha, algorithm) + _wire(nodes, volume, gbit, eta)


def _latency(nodes, alpha, algorithm):
    hops = 2 * (nodes - 1) if algorithm == "ring" else 2 * math.ceil(math.log2(nodes))
    return hops * alpha


def _wire(nodes, volume, gbit, eta):
    return 2 * (nodes - 1) / nodes * 8 * volume / (eta * gbit * 1e9)


def break_even(traffic, reference, nodes, alpha, eta, algorithm="ring"):
    """Gbit/s below which ``traffic``'s step beats ``reference``'s (inf: at every rate; 0: never)."""
    saved = _wire(nodes, reference[1], 1.0, eta) - _wire(nodes, traffic[1], 1.0, eta)  # × 1 Gbit/s
    extra = traffic[2] - reference[2] + (traffic[0] - reference[0]) * _latency(nodes, alpha, algorithm)
    if extra <= 0:
        return math.inf if saved > 0 else 0.0
    return max(0.0, saved / extra)
