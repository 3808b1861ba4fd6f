"""Tideflow eventstore."""

from __future__ import annotations
