"""docs/security.md's limits table, tideflow.limits.BOUNDS and the code say the same.

Each row of the table is a bound of ``BOUNDS`` (and each bound a row, in order); its
setting and default are in the row's second cell; the default is the code's: the
``Settings`` field its variable sets, or the constant of a fixed bound. A limit
added to the settings without a row here fails the last test.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tideflow import egress, settings
from tideflow.api.routes import events, instances
from tideflow.limits import BOUNDS, Bound
from tideflow.settings import Settings
from tideflow.triggers import subscriptions

DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"
UNITS = {"": 1, "MiB": 1024 * 1024, "s": 1, "days": 86400, "minutes": 60, "redirects": 1}


def table_rows() -> list[list[str]]:
    """The cells of each row of the "Limits" section's table."""
    section = DOC.read_text().split("## Limits", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines[2:]]


def numbers(text: str) -> list[float]:
    """Each ``N unit`` of ``text`` in base units (bytes, seconds): ``"1 MiB"`` -> 1048576."""
    found = re.findall(r"(\d[\d,]*(?:\.\d+)?)\s*(MiB|s|days|minutes|redirects)?\b", text)
    return [float(n.replace(",", "")) * UNITS[unit] for n, unit in found]


FIXED: dict[str, Callable[[], list[int] | list[float]]] = {
    "a subscription's `maxInFlight`": lambda: [
        subscriptions.DeliveryPolicy().max_in_flight,
        subscriptions.MAX_IN_FLIGHT_LIMIT,
    ],
    "timeline entries per page": lambda: [
        instances.DEFAULT_TIMELINE_LIMIT,
        instances.MAX_TIMELINE_LIMIT,
    ],
    "instances or events per page": lambda: [100, instances.MAX_LIMIT, events.MAX_LIMIT][
        : 2 if instances.MAX_LIMIT == events.MAX_LIMIT else 3
    ],
    "instances one batch starts": lambda: [instances.MAX_BATCH],
    "a definition's external documents": lambda: [
        egress.REFERENCE_LIMITS.timeout,
        egress.REFERENCE_LIMITS.max_bytes,
        egress.REFERENCE_LIMITS.max_redirects,
    ],
    "a function call's answer": lambda: [egress.CALL_LIMITS.timeout],
    "an OpenAPI document a call needs": lambda: [
        egress.DOCUMENT_LIMITS.timeout,
        egress.DOCUMENT_LIMITS.max_bytes,
    ],
}


def test_every_row_is_a_bound_and_every_bound_a_row_in_order() -> None:
    rows = table_rows()
    assert len(rows) == len(BOUNDS)
    for row, bound in zip(rows, BOUNDS, strict=True):
        assert row[0].startswith(bound.what), (row[0], bound.what)


@pytest.mark.parametrize("bound", BOUNDS, ids=lambda b: b.what)
def test_the_row_shows_the_setting_and_the_default(bound: Bound) -> None:
    (row,) = [r for r in table_rows() if r[0].startswith(bound.what)]
    if bound.setting is not None:
        assert f"`{bound.setting}`" in row[1]
    assert bound.shown in row[1]


@pytest.mark.parametrize("bound", BOUNDS, ids=lambda b: b.what)
def test_the_default_shown_is_the_codes(bound: Bound) -> None:
    if bound.setting is None:
        assert numbers(bound.shown) == FIXED[bound.what]()
        return
    field = bound.setting.removeprefix("TIDEFLOW_").lower()
    if bound.setting in settings._NUMBERS:
        field = settings._NUMBERS[bound.setting][0]
    value = getattr(Settings(), field)
    if bound.shown == "none":
        assert value is None
    else:
        assert numbers(bound.shown) == [value], (bound.setting, value)


def test_every_limit_setting_is_in_the_table() -> None:
    documented = {b.setting for b in BOUNDS}
    names = set(settings._NUMBERS) | {"TIDEFLOW_MAX_REQUEST_BYTES", "TIDEFLOW_RATE_LIMIT"}
    limits = {
        n for n in names if n.endswith(("_LIMIT", "_WORKERS", "_CONNECTIONS", "_AFTER", "_BYTES"))
    }
    assert limits <= documented, limits - documented
