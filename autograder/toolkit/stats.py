"""Statistical tests with stated error rates, for properties of random outputs.

Every test here is two-sided and fails a correct implementation with
probability about ``alpha`` (default 1e-6 per call), so a property that makes a
few calls stays deterministic in practice; pass seeded generators for exact
reproducibility. Distribution shape is tested with Kolmogorov-Smirnov
(:func:`ks_test`), so a normal and a uniform with the same mean and std differ.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

__all__ = ["z_for", "proportion_ok", "mean_ok", "ks_statistic", "ks_threshold", "ks_test", "uniform_cdf", "normal_cdf"]


def z_for(alpha: float) -> float:
    """The two-sided normal quantile: ``P(|Z| > z) = alpha``."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    return math.sqrt(2) * torch.special.erfinv(torch.tensor(1 - alpha, dtype=torch.float64)).item()


def proportion_ok(successes: float, n: int, p: float, alpha: float = 1e-6) -> bool:
    """``successes`` out of ``n`` is consistent with probability ``p`` (normal approximation, exact at p = 0 or 1)."""
    if p <= 0 or p >= 1:
        return successes == (0 if p <= 0 else n)
    sd = math.sqrt(n * p * (1 - p))
    return abs(successes - n * p) <= z_for(alpha) * sd + 0.5


def mean_ok(samples: torch.Tensor, mean: float, std: float, alpha: float = 1e-6) -> bool:
    """The sample mean of ``samples`` is consistent with a distribution of the given mean and std."""
    n = samples.numel()
    return abs(float(samples.double().mean()) - mean) <= z_for(alpha) * std / math.sqrt(n) + 1e-12


def ks_statistic(samples: torch.Tensor, cdf: Callable[[torch.Tensor], torch.Tensor]) -> float:
    """``sup |F_n(x) - F(x)|`` of the samples against the continuous ``cdf``."""
    x = samples.detach().double().flatten().sort().values
    n = x.numel()
    F = cdf(x).double()
    upper = torch.arange(1, n + 1, dtype=torch.float64) / n - F
    lower = F - torch.arange(0, n, dtype=torch.float64) / n
    return float(torch.maximum(upper, lower).max())


def ks_threshold(n: int, alpha: float = 1e-6) -> float:
    """The KS statistic above which the fit is rejected at level ``alpha`` (asymptotic, ``sqrt(-ln(alpha/2)/(2n))``)."""
    return math.sqrt(-math.log(alpha / 2) / (2 * n))


def ks_test(samples: torch.Tensor, cdf: Callable[[torch.Tensor], torch.Tensor], alpha: float = 1e-6) -> bool:
    """Whether ``samples`` are consistent with the continuous distribution ``cdf``."""
    return ks_statistic(samples, cdf) <= ks_threshold(samples.numel(), alpha)


def uniform_cdf(low: float, high: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """The CDF of the uniform distribution on ``[low, high]``."""
    return lambda x: ((x - low) / (high - low)).clamp(0, 1)


def normal_cdf(mean: float, std: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """The CDF of the normal distribution ``N(mean, std^2)``."""
    return lambda x: 0.5 * (1 + torch.erf((x - mean) / (std * math.sqrt(2))))
