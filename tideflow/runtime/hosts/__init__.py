"""Tideflow runtime/hosts."""

from __future__ import annotations
