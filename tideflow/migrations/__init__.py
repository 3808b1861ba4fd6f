"""Numbered SQL migrations, applied in order by :func:`tideflow.db.migrate`."""

from __future__ import annotations
