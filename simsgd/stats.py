"""Monte Carlo estimates of expectations with one-sided confidence bounds.

Replicas of a run are independent and identically distributed, so an expectation
E[Y] is estimated by the mean of the R per-replica values. Every estimate carries a
one-sided lower and upper bound, each at confidence level 1 − α:

``"clt"`` (default)
    mean ± z_{1−α} s / √R, with s the sample standard deviation (ddof = 1) and
    z_{1−α} the standard normal quantile: the central-limit bound; it is asymptotic in
    R, so use R ≥ 100 for heavy-tailed values.
``"bootstrap"``
    the α and 1 − α quantiles of the means of ``resamples`` percentile-bootstrap
    resamples of the R values, drawn from a seeded generator.

:func:`max_mean_bounds` bounds max_t E[Y_t] over T time points simultaneously
(Bonferroni: each column at level α/T), so that a check "max_t E[Y_t] ≤ B" passes only
if every column's upper bound is below B. :func:`fit_exponent` fits y ∝ x^p by least
squares on logarithms and bootstraps the replicas for an interval on p.

:func:`tost` decides equivalence of paired differences against a margin fixed in advance
(two one-sided Student-t tests); :func:`student_t_cdf` and :func:`student_t_quantile` are
its distribution (no SciPy needed).
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass
from statistics import NormalDist

import numpy as np

from ._checks import check_choice, check_int, check_real

__all__ = [
    "Estimate",
    "Exponent",
    "mean_bounds",
    "max_mean_bounds",
    "fit_exponent",
    "ratio_bounds",
    "local_slopes",
    "METHODS",
    "mean_ci",
    "mean_band",
    "wilson_interval",
    "Equivalence",
    "tost",
    "student_t_cdf",
    "student_t_quantile",
    "VERDICTS",
]

METHODS = ("clt", "bootstrap")


@dataclass(frozen=True)
class Estimate:
    """An expectation estimated from ``n`` replicas.

    Attributes
    ----------
    mean : float
        Point estimate.
    lower, upper : float
        One-sided bounds, each holding with probability ≥ 1 − ``alpha`` (asymptotically
        for ``"clt"``).
    n : int
        Replica count R.
    alpha : float
    method : str
        How the bounds were made (e.g. ``"clt, R=400, Bonferroni over T=501"``).
    """

    mean: float
    lower: float
    upper: float
    n: int
    alpha: float
    method: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Exponent:
    """Fitted exponent p of y ≈ c·x^p with a two-sided bootstrap interval [lower, upper]."""

    slope: float
    lower: float
    upper: float
    level: float
    resamples: int

    def to_dict(self) -> dict:
        return asdict(self)


def _samples(samples, ndim: int, name: str = "samples") -> np.ndarray:
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != ndim or x.shape[0] < 2 or not np.all(np.isfinite(x)):
        shape = "(R,)" if ndim == 1 else "(R, T)"
        raise ValueError(f"{name} must be a finite array of shape {shape} with R ≥ 2, got shape {x.shape}")
    return x


def _column_bounds(x: np.ndarray, alpha: float, method: str, resamples: int, seed: int):
    """Per-column mean, lower and upper bound of x (R, T) at one-sided level alpha each."""
    R = x.shape[0]
    mean = x.mean(axis=0)
    if method == "clt":
        half = NormalDist().inv_cdf(1.0 - alpha) * x.std(axis=0, ddof=1) / np.sqrt(R)
        return mean, mean - half, mean + half
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, R, size=(resamples, R))
    means = x[idx].mean(axis=1)  # (B, T)
    return mean, np.quantile(means, alpha, axis=0), np.quantile(means, 1.0 - alpha, axis=0)


def _check_options(alpha, method, resamples, seed):
    check_real("alpha", alpha, 0.0, 0.5, low_open=True, high_open=True)
    check_choice("method", method, METHODS)
    check_int("resamples", resamples, 100)
    check_int("seed", seed, 0)


def mean_bounds(
    samples, alpha: float = 0.05, method: str = "clt", resamples: int = 2000, seed: int = 0
) -> Estimate:
    """E[Y] from R independent replicas with one-sided bounds at level 1 − α.

    Parameters
    ----------
    samples : array_like, shape (R,)
        One value of Y per replica, R ≥ 2.
    alpha : float in (0, 0.5)
    method : {"clt", "bootstrap"}
    resamples : int ≥ 100
        Bootstrap resamples (``"bootstrap"`` only).
    seed : int ≥ 0
        Seed of the bootstrap resampling.

    Returns
    -------
    Estimate
    """
    _check_options(alpha, method, resamples, seed)
    x = _samples(samples, 1)
    mean, lower, upper = _column_bounds(x[:, None], alpha, method, resamples, seed)
    label = f"{method}, R={x.shape[0]}" + (f", B={resamples}" if method == "bootstrap" else "")
    return Estimate(float(mean[0]), float(lower[0]), float(upper[0]), x.shape[0], alpha, label)


def max_mean_bounds(
    samples, alpha: float = 0.05, method: str = "clt", resamples: int = 2000, seed: int = 0
) -> Estimate:
    """max_t E[Y_t] with bounds simultaneous over the T columns (Bonferroni).

    Parameters
    ----------
    samples : array_like, shape (R, T)
        Y_t of each replica at each of T time points.
    alpha, method, resamples, seed
        As :func:`mean_bounds`; each column is bounded at level α / T.

    Returns
    -------
    Estimate
        ``mean`` = max_t of the column means, ``upper`` = max_t of the column upper
        bounds (≥ max_t E[Y_t] with probability ≥ 1 − α), ``lower`` = max_t of the
        column lower bounds (≤ max_t E[Y_t] with probability ≥ 1 − α).
    """
    _check_options(alpha, method, resamples, seed)
    x = _samples(samples, 2)
    T = x.shape[1]
    mean, lower, upper = _column_bounds(x, alpha / T, method, resamples, seed)
    label = f"{method}, R={x.shape[0]}, Bonferroni over T={T}" + (
        f", B={resamples}" if method == "bootstrap" else ""
    )
    return Estimate(float(mean.max()), float(lower.max()), float(upper.max()), x.shape[0], alpha, label)


def fit_exponent(x, samples, level: float = 0.9, resamples: int = 1000, seed: int = 0) -> Exponent:
    """Fit E[Y](x) ≈ c·x^p by least squares on (log x, log mean Y), with a bootstrap interval.

    Parameters
    ----------
    x : array_like, shape (K,)
        K ≥ 2 distinct positive abscissae.
    samples : sequence of K arrays, each shape (R_k,)
        The replicas of Y at each x (independent runs, so each is resampled on its own).
    level : float in (0, 1)
        Two-sided level of the percentile interval on p.
    resamples : int ≥ 100
    seed : int ≥ 0

    Returns
    -------
    Exponent

    Raises
    ------
    ValueError
        If some mean is not positive (no logarithm), or the inputs are malformed.
    """
    check_real("level", level, 0.0, 1.0, low_open=True, high_open=True)
    check_int("resamples", resamples, 100)
    check_int("seed", seed, 0)
    logx = np.log(np.asarray(x, dtype=np.float64))
    if (
        logx.ndim != 1
        or logx.size < 2
        or len(samples) != logx.size
        or not np.all(np.isfinite(logx))
        or np.ptp(logx) == 0
    ):
        raise ValueError("x must hold K ≥ 2 distinct positive values, one per entry of samples")
    ys = [_samples(s, 1, f"samples[{k}]") for k, s in enumerate(samples)]
    means = np.array([y.mean() for y in ys])
    if np.any(means <= 0):
        raise ValueError(f"samples must have positive means to fit a power law, got {means.tolist()}")
    rng = np.random.default_rng(seed)
    boot = np.stack([y[rng.integers(0, y.size, size=(resamples, y.size))].mean(axis=1) for y in ys], axis=1)
    boot = np.where(boot > 0, boot, np.nan)  # (B, K); a non-positive mean cannot be fitted
    xc = logx - logx.mean()
    slope = float(xc @ np.log(means) / (xc @ xc))
    slopes = np.log(boot) @ xc / (xc @ xc)
    slopes = slopes[np.isfinite(slopes)]
    q = (1.0 - level) / 2.0
    return Exponent(
        slope, float(np.quantile(slopes, q)), float(np.quantile(slopes, 1.0 - q)), level, resamples
    )


def ratio_bounds(
    numerator, denominator, alpha: float = 0.05, resamples: int = 2000, seed: int = 0
) -> Estimate:
    """E[Y]/E[Z] from R paired replicas (Y_k, Z_k), with percentile-bootstrap bounds.

    The pairs are resampled together, so a positive correlation between Y and Z (common
    random numbers: two methods run on the same seeds) narrows the interval, as it should.

    Parameters
    ----------
    numerator, denominator : array_like, shape (R,)
        Y and Z of each replica; E[Z] must be positive.
    alpha : float in (0, 0.5)
        Each one-sided bound holds with probability ≥ 1 − α.
    resamples : int ≥ 100
    seed : int ≥ 0

    Returns
    -------
    Estimate
        ``mean`` = mean(Y)/mean(Z); ``lower``, ``upper`` = the α and 1 − α quantiles of the
        resampled ratios.
    """
    _check_options(alpha, "bootstrap", resamples, seed)
    y, z = _samples(numerator, 1, "numerator"), _samples(denominator, 1, "denominator")
    if y.shape != z.shape:
        raise ValueError(f"numerator and denominator must pair up, got shapes {y.shape} and {z.shape}")
    if z.mean() <= 0:
        raise ValueError(f"denominator must have a positive mean, got {z.mean()}")
    idx = np.random.default_rng(seed).integers(0, y.size, size=(resamples, y.size))
    zb = z[idx].mean(axis=1)
    ratios = y[idx].mean(axis=1) / np.where(zb > 0, zb, np.nan)
    lower, upper = np.nanquantile(ratios, [alpha, 1.0 - alpha])
    label = f"paired bootstrap, R={y.size}, B={resamples}"
    return Estimate(float(y.mean() / z.mean()), float(lower), float(upper), y.size, alpha, label)


def local_slopes(x, y) -> list:
    """Slopes log(y_{k+1}/y_k) / log(x_{k+1}/x_k) between neighbours: the shape without a model.

    Parameters
    ----------
    x, y : array_like, shape (K,)
        Positive abscissae (distinct, sorted) and positive values.

    Returns
    -------
    list of float, length K − 1
        NaN where a value is not positive.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or x.size < 2 or np.any(x <= 0) or np.any(np.diff(x) == 0):
        raise ValueError("x must hold K ≥ 2 distinct positive values and y one value per x")
    with np.errstate(divide="ignore", invalid="ignore"):
        logy = np.where(y > 0, np.log(np.where(y > 0, y, 1.0)), np.nan)
    return [float(v) for v in np.diff(logy) / np.diff(np.log(x))]


# Two-sided 95% intervals for tables and plots.


def mean_ci(values, axis=0):
    """Mean and the half-width of its normal 95% confidence interval (1.96 s/√R)."""
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[axis]
    sd = values.std(axis=axis, ddof=1) if n > 1 else np.zeros_like(values.mean(axis=axis))
    return values.mean(axis=axis), 1.96 * sd / math.sqrt(n)


def mean_band(values, resamples=400, seed=0):
    """Mean over replicas and a 95% bootstrap percentile band for it.

    The band resamples the R replicas with replacement (seeded, so it is
    reproducible); unlike mean ± 1.96·s/√R it stays positive for heavy-tailed,
    positive data such as losses on a log axis.

    Parameters
    ----------
    values : array, shape (R, T+1)
    resamples : int
        Bootstrap resamples B.
    seed : int

    Returns
    -------
    mean, lower, upper : arrays, shape (T+1,)
        The mean and the 2.5% and 97.5% percentiles of the B resampled means.
    """
    values = np.asarray(values, dtype=np.float64)
    R = values.shape[0]
    counts = np.random.default_rng(seed).multinomial(R, np.full(R, 1.0 / R), size=resamples)  # (B, R)
    means = counts @ values / R  # (B, T+1)
    lower, upper = np.percentile(means, [2.5, 97.5], axis=0)
    return values.mean(axis=0), lower, upper


def wilson_interval(k: int, n: int, z: float = 1.96):
    """Wilson score 95% interval of a binomial proportion k/n."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


# Student-t distribution and the two one-sided tests (TOST) of equivalence.

VERDICTS = ("equivalent", "different", "undecided")


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularised incomplete beta function (modified Lentz)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        for aa in (
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta function I_x(a, b) for x in [0, 1]."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def student_t_cdf(t: float, df: float) -> float:
    """P(T ≤ t) for Student's t with ``df`` degrees of freedom.

    Parameters
    ----------
    t : float
        Any finite value (±inf give 0 and 1).
    df : float > 0

    Returns
    -------
    float
    """
    check_real("df", df, 0.0, low_open=True)
    t = float(t)
    if math.isinf(t):
        return 0.0 if t < 0 else 1.0
    tail = 0.5 * _betainc(0.5 * df, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def student_t_quantile(p: float, df: float) -> float:
    """The t with P(T ≤ t) = ``p`` for Student's t with ``df`` degrees of freedom.

    Parameters
    ----------
    p : float in (0, 1)
    df : float > 0

    Returns
    -------
    float
        Accurate to about 1e-10 (Newton's method on :func:`student_t_cdf`, bracketed).
    """
    return _t_quantile(
        check_real("p", p, 0.0, 1.0, low_open=True, high_open=True), check_real("df", df, 0.0, low_open=True)
    )


@functools.lru_cache(maxsize=4096)
def _t_quantile(p: float, df: float) -> float:
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -_t_quantile(1.0 - p, df)
    # Newton's method on the cdf from the normal quantile, inside a bracket kept by bisection.
    log_norm = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    pdf = lambda t: math.exp(log_norm - (df + 1) / 2 * math.log1p(t * t / df))
    low, high = 0.0, 1.0
    while student_t_cdf(high, df) < p:
        low, high = high, 2.0 * high
    t = min(max(NormalDist().inv_cdf(p), low), high)
    for _ in range(100):
        error = student_t_cdf(t, df) - p
        if error < 0:
            low = t
        else:
            high = t
        step = error / pdf(t)
        t_new = t - step
        if not low < t_new < high:  # Newton left the bracket: bisect instead
            t_new = 0.5 * (low + high)
        if abs(t_new - t) <= 1e-13 * max(1.0, abs(t)) or high - low <= 1e-13 * max(1.0, high):
            return t_new
        t = t_new
    return t


def _pairs_needed(n, sd, gap, alpha, most=10**7):
    """The least k > n with t_{1−α, k−1}·sd/√k < gap (None beyond ``most``)."""
    fits = lambda k: student_t_quantile(1.0 - alpha, k - 1) * sd / math.sqrt(k) < gap
    low, high = n, 2 * n  # fits(low) is False: the run was undecided
    while not fits(high):  # doubling, then bisection: few distinct quantiles
        if high >= most:
            return None
        low, high = high, min(2 * high, most)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if fits(mid) else (mid, high)
    return high


@dataclass(frozen=True)
class Equivalence:
    """The outcome of :func:`tost`.

    Attributes
    ----------
    mean : float
        Mean of the paired differences.
    lower, upper : float
        The (1 − 2α) Student-t interval of the mean: TOST at level α rejects both
        one-sided null hypotheses exactly when it lies inside (−margin, margin).
    margin : float
        m, fixed before the data were seen.
    alpha : float
        Level of each one-sided test.
    n : int
        Number of paired differences.
    p_value : float
        TOST's p-value: the larger of the two one-sided p-values (equivalent iff < α).
    verdict : str
        ``"equivalent"``: the interval lies inside (−m, m); ``"different"``: it lies wholly
        outside [−m, m] (the difference exceeds the margin at level α); ``"undecided"``:
        it straddles ±m.
    needed : int or None
        For ``"undecided"``: how many differences would decide it if their mean and standard
        deviation stayed as measured (the least n whose interval would clear ±m; None when
        decided, or when no count up to 10⁷ would).
    """

    mean: float
    lower: float
    upper: float
    margin: float
    alpha: float
    n: int
    p_value: float
    verdict: str
    needed: int | None

    @property
    def text(self) -> str:
        """The verdict as a table cell, e.g. ``equivalent within ±0.01``."""
        if self.verdict == "equivalent":
            return f"equivalent within ±{self.margin:g}"
        if self.verdict == "different":
            return f"different (by more than {self.margin:g})"
        more = f"; ≈{self.needed} pairs would decide" if self.needed else ""
        return f"undecided at ±{self.margin:g}{more}"

    def to_dict(self) -> dict:
        return {**asdict(self), "text": self.text}


def tost(diffs, margin: float, alpha: float = 0.05) -> Equivalence:
    """Two one-sided tests (TOST) of |E[d]| < margin from paired differences d.

    H₀⁻: E[d] ≤ −m and H₀⁺: E[d] ≥ m are each tested with a one-sided Student-t test at
    level α; equivalence is declared when both are rejected, i.e. when the (1 − 2α)
    interval mean ± t_{1−α, n−1} s/√n lies inside (−m, m). The same interval lying
    wholly outside [−m, m] shows a difference larger than the margin; anything else is
    undecided. A non-rejection of "no difference" is never reported as equivalence.

    Parameters
    ----------
    diffs : array_like, shape (n,)
        Paired differences (e.g. one method's final loss minus another's, seed by seed),
        n ≥ 2, finite.
    margin : float > 0
        The equivalence margin m, chosen before the run.
    alpha : float in (0, 0.5)
        Level of each one-sided test (for k comparisons at family level α, pass α/k).

    Returns
    -------
    Equivalence

    Examples
    --------
    >>> tost([0.001, -0.002, 0.0005, 0.0015], margin=0.01).verdict
    'equivalent'
    >>> tost([0.03, 0.031, 0.029, 0.032], margin=0.01).verdict
    'different'
    """
    m = check_real("margin", margin, 0.0, low_open=True)
    check_real("alpha", alpha, 0.0, 0.5, low_open=True, high_open=True)
    d = _samples(diffs, 1, "diffs")
    n, mean, sd = d.size, float(d.mean()), float(d.std(ddof=1))
    t = student_t_quantile(1.0 - alpha, n - 1)
    se = sd / math.sqrt(n)
    lower, upper = mean - t * se, mean + t * se
    if se > 0:
        p_value = max(1.0 - student_t_cdf((mean + m) / se, n - 1), student_t_cdf((mean - m) / se, n - 1))
    else:
        p_value = 0.0 if abs(mean) < m else 1.0
    if -m < lower and upper < m:
        verdict = "equivalent"
    elif lower >= m or upper <= -m:
        verdict = "different"
    else:
        verdict = "undecided"
    needed = None
    gap = abs(abs(mean) - m)
    if verdict == "undecided" and gap > 0 and sd > 0:
        needed = _pairs_needed(n, sd, gap, alpha)
    return Equivalence(mean, lower, upper, m, alpha, n, float(p_value), verdict, needed)
