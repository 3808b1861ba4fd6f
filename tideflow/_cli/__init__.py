"""The command modules behind ``tideflow.cli``."""

from __future__ import annotations
