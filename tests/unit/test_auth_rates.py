"""Rate limits: parsing ``N/s``, and the token bucket on a manual clock (no sleeping);
the security settings read from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from tideflow.auth.rates import MAX_BUCKETS, Rate, RateLimiter, retry_after
from tideflow.errors import InvalidArgument
from tideflow.settings import Settings
from tideflow.testing import ManualClock


@pytest.mark.parametrize(
    ("text", "per_second", "burst", "shown"),
    [
        ("10/s", 10.0, 10.0, "10/s"),
        ("600/m", 10.0, 600.0, "600/m"),
        (" 3 / hour ", 3 / 3600, 3.0, "3/h"),
        ("0.5/s", 0.5, 1.0, "0.5/s"),
        ("90/min", 1.5, 90.0, "90/m"),
    ],
)
def test_rates_are_read_from_n_per_unit(
    text: str, per_second: float, burst: float, shown: str
) -> None:
    rate = Rate.parse(text)
    assert rate.per_second == pytest.approx(per_second)
    assert (rate.burst, str(rate)) == (burst, shown)


@pytest.mark.parametrize("bad", ["", "10", "0/s", "-1/s", "10/d", "ten/s", "10/s/s", "1e3/s"])
def test_other_rates_are_refused_naming_the_setting(bad: str) -> None:
    with pytest.raises(InvalidArgument, match="write N/s, N/m or N/h") as caught:
        Rate.parse(bad, "--rate-limit")
    assert caught.value.argument == "--rate-limit"


def test_a_bucket_spends_its_burst_then_refills_at_the_rate() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock, Rate.parse("2/s"))
    assert [limiter.wait_for("a") for _ in range(2)] == [0.0, 0.0]
    assert limiter.wait_for("a") == pytest.approx(0.5)
    assert limiter.wait_for("b") == 0.0  # each caller has its own bucket
    clock.advance(0.25)
    assert limiter.wait_for("a") == pytest.approx(0.25)  # refused: nothing taken
    clock.advance(0.25)
    assert limiter.wait_for("a") == 0.0
    assert limiter.wait_for("a") == pytest.approx(0.5)
    clock.advance(3600)
    assert [limiter.wait_for("a") for _ in range(3)][:2] == [0.0, 0.0]  # full, never more


def test_a_callers_own_rate_wins_over_the_default_and_none_means_unlimited() -> None:
    clock = ManualClock()
    unlimited = RateLimiter(clock)
    assert all(unlimited.wait_for("a") == 0.0 for _ in range(1000))
    limiter = RateLimiter(clock, Rate.parse("100/s"))
    hourly = Rate.parse("1/h")
    assert limiter.wait_for("t", hourly) == 0.0
    assert limiter.wait_for("t", hourly) == pytest.approx(3600)
    assert retry_after(limiter.wait_for("t", hourly)) == 3600
    assert limiter.wait_for("other") == 0.0


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert [retry_after(s) for s in (0.001, 0.5, 1.0, 1.2, 59.9)] == [1, 1, 1, 2, 60]


def test_many_callers_drop_idle_buckets_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tideflow.auth.rates.MAX_BUCKETS", 3)
    clock = ManualClock()
    limiter = RateLimiter(clock, Rate.parse("1/s"))
    for caller in ("a", "b"):
        assert limiter.wait_for(caller) == 0.0
    clock.advance(1.0)  # a and b are full again
    assert limiter.wait_for("c") == 0.0
    assert len(limiter) == 3
    assert limiter.wait_for("d") == 0.0  # the table is full: a and b are dropped
    assert len(limiter) == 2
    assert limiter.wait_for("c") == pytest.approx(1.0)  # c is still counted
    for caller in ("e", "f"):  # all busy: the table starts again
        assert limiter.wait_for(caller) == 0.0
    assert len(limiter) == 1
    assert MAX_BUCKETS >= 10_000


def test_the_security_settings_are_read_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "TIDEFLOW_RATE_LIMIT": "20/s",
            "TIDEFLOW_TLS_CERT": "/etc/tf/cert.pem",
            "TIDEFLOW_TLS_KEY": "/etc/tf/key.pem",
            "TIDEFLOW_OIDC_ISSUER": "https://idp.example",
            "TIDEFLOW_OIDC_AUDIENCE": "tideflow",
            "TIDEFLOW_OIDC_SCOPE_CLAIM": "scp",
        }
    )
    assert settings.rate_limit == "20/s"
    assert (settings.tls_cert, settings.tls_key) == (
        Path("/etc/tf/cert.pem"),
        Path("/etc/tf/key.pem"),
    )
    assert (settings.oidc_issuer, settings.oidc_audience, settings.oidc_scope_claim) == (
        "https://idp.example",
        "tideflow",
        "scp",
    )
    assert Settings.from_env({}).oidc_scope_claim == "scope"
    assert Settings.from_env({}).rate_limit is None
