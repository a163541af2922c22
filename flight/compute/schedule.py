"""When to scrub and when to checkpoint, from the upset rate and what things cost.

Scrub interval. A stripe of k data blocks and two parity blocks, B bits each, loses data
when three or more of its k + 2 blocks are hit between two scrubs (P+Q rebuilds any two).
With upsets at lambda per bit-second a block is hit at mu = lambda B; over an interval T
a stripe fails with probability about C(k+2, 3) (mu T)^3 (mu T << 1). N stripes then
lose data at N C(k+2, 3) mu^3 T^2 per second; holding that below a target rate eps,

    T_scrub = sqrt(eps / (N C(k+2, 3) mu^3)).

Inside the South Atlantic Anomaly mu rises by the SAA factor f and T_scrub falls by
f^(3/2). (Between scrubs, ABFT still catches any weight hit a GEMM uses; the scrub bounds
what parity alone could no longer rebuild.)

Checkpoint interval: Young (1974), with Daly's (2006) first-order correction,
T_ckpt = sqrt(2 C M) - C for a checkpoint that costs C seconds and a mean time M between
failures that need a rollback.

The flight software knows no position, so it does not know when it is in the SAA. It
estimates the upset rate from the corrections it makes: an exponentially weighted rate,
never below a configured prior, which rises by itself in the SAA.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def scrub_interval_s(upsets_per_bit_s: float, block_bytes: int, stripe_blocks: int,
                     stripes: int, losses_per_s: float) -> float:
    """T_scrub: the longest interval keeping expected unrebuildable stripes below
    `losses_per_s`."""
    if upsets_per_bit_s <= 0 or stripes <= 0:
        return math.inf
    mu = upsets_per_bit_s * block_bytes * 8
    triples = math.comb(stripe_blocks + 2, 3)
    return math.sqrt(losses_per_s / (stripes * triples * mu**3))


def young_daly_interval_s(checkpoint_cost_s: float, mtbf_s: float) -> float:
    """T_ckpt = sqrt(2 C M) - C (never below C itself)."""
    if checkpoint_cost_s <= 0:
        return 0.0
    if not math.isfinite(mtbf_s):
        return math.inf
    return max(math.sqrt(2.0 * checkpoint_cost_s * mtbf_s) - checkpoint_cost_s,
               checkpoint_cost_s)


@dataclass
class RateEstimate:
    """Events per unit of exposure, weighted toward the last `window` of exposure time,
    never below `prior`. Exposure is bit-seconds for upsets, seconds for hangs."""

    prior: float
    window_s: float = 600.0
    events: float = 0.0
    exposure: float = 0.0

    def add(self, events: float, exposure: float, dt_s: float) -> None:
        keep = math.exp(-dt_s / self.window_s)
        self.events = self.events * keep + events
        self.exposure = self.exposure * keep + exposure

    @property
    def rate(self) -> float:
        observed = self.events / self.exposure if self.exposure > 0 else 0.0
        return max(self.prior, observed)


@dataclass(frozen=True, slots=True)
class Rates:
    """What the schedule is set from: the upset and hang rates (estimated, or the
    priors), the target rate of stripes lost beyond parity, and what a checkpoint costs."""

    upsets_per_bit_s: float
    hangs_per_s: float
    losses_per_s: float
    storage_bytes_per_s: float
    checkpoint_fixed_s: float


def scrub_and_checkpoint_s(rates: Rates, block_bytes: int, stripe_blocks: int, stripes: int,
                           state_bytes: int) -> tuple[float, float]:
    """(T_scrub, T_ckpt) for a job of `stripes` shielded stripes and `state_bytes` of
    checkpointed state."""
    scrub_s = scrub_interval_s(rates.upsets_per_bit_s, block_bytes, stripe_blocks, stripes,
                               rates.losses_per_s)
    cost_s = state_bytes / rates.storage_bytes_per_s + rates.checkpoint_fixed_s
    mtbf_s = 1.0 / rates.hangs_per_s if rates.hangs_per_s > 0 else math.inf
    return scrub_s, young_daly_interval_s(cost_s, mtbf_s)


def steps(interval_s: float, steps_per_s: float) -> int:
    """An interval in whole steps, at least one, capped where it no longer matters."""
    return max(1, min(int(interval_s * steps_per_s), 1_000_000))
