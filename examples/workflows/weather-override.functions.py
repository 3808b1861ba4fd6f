"""Stand-ins for weather-override.yaml's functions (tideflow run --functions)."""

from __future__ import annotations


def forecast(args):
    """Called with the evaluated arguments as one dict instead of the REST call."""
    return [
        {"day": day, "city": args["city"], "rain": 0.2 + 0.5 * day} for day in range(args["days"])
    ]
