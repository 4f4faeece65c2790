"""The LM comparison's paired differences from results/lm/lm.csv, with scipy.stats alone.

Written apart from simsgd (no import of it): the final validation loss per (method, seed), the
seed-paired difference to PowerSGD, and its two-sided 98% Student-t interval (TOST at α = 0.01
per side, Bonferroni 0.05/5). Run from the repository root: python claims/independent/lm_paired_scipy.py
"""

import csv
import statistics

from scipy import stats

final = {}
with open("results/lm/lm.csv", newline="") as f:
    rows = list(csv.DictReader(f))
last_step = max(int(r["step"]) for r in rows)
for r in rows:
    if int(r["step"]) == last_step:
        final[(r["method"], r["tau"], int(r["seed"]))] = float(r["validation_loss"])
seeds = sorted({seed for _, _, seed in final})
for method, tau in (("PowerSGD+", "10"), ("GaLore-style", "100")):
    diffs = [final[(method, tau, s)] - final[("PowerSGD", "0", s)] for s in seeds]
    mean = statistics.mean(diffs)
    half = stats.t.ppf(0.99, len(diffs) - 1) * statistics.stdev(diffs) / len(diffs) ** 0.5
    print(
        f"{method} τ={tau} − PowerSGD: {mean:+.4f} [{mean - half:+.4f}, {mean + half:+.4f}] ({len(diffs)} seeds)"
    )
