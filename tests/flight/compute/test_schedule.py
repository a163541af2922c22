import math

import pytest

from flight.compute.schedule import RateEstimate, scrub_interval_s, young_daly_interval_s


def test_the_scrub_interval_holds_the_loss_rate_at_its_target() -> None:
    lam, block, k, stripes, target = 1e-8 / 86400, 65536, 16, 100, 1e-6 / 86400
    t = scrub_interval_s(lam, block, k, stripes, target)
    mu = lam * block * 8
    losses = stripes * math.comb(k + 2, 3) * (mu * t) ** 3 / t
    assert losses == pytest.approx(target, rel=1e-9)


def test_the_saa_shortens_the_scrub_interval_by_its_factor_to_the_three_halves() -> None:
    base = scrub_interval_s(1e-13, 65536, 16, 10, 1e-11)
    saa = scrub_interval_s(30e-13, 65536, 16, 10, 1e-11)
    assert base / saa == pytest.approx(30 ** 1.5)
    assert scrub_interval_s(0.0, 65536, 16, 10, 1e-11) == math.inf


def test_young_daly() -> None:
    assert young_daly_interval_s(2.0, 10_000.0) == pytest.approx(math.sqrt(40_000) - 2)
    assert young_daly_interval_s(1.0, math.inf) == math.inf
    assert young_daly_interval_s(5.0, 1.0) == 5.0  # never below the cost itself


def test_the_rate_estimate_rises_with_events_and_never_falls_below_its_prior() -> None:
    r = RateEstimate(prior=1e-6, window_s=100.0)
    assert r.rate == 1e-6
    for _ in range(50):
        r.add(events=5, exposure=1e5, dt_s=1.0)
    assert r.rate == pytest.approx(5e-5, rel=1e-6)
    for _ in range(2000):
        r.add(events=0, exposure=1e5, dt_s=1.0)
    assert r.rate == 1e-6
