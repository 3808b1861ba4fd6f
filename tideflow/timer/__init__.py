"""Tideflow timer."""

from __future__ import annotations
