"""The web console, served by ``tideflow serve`` at ``/`` (see docs/console.md)."""

from __future__ import annotations

from tideflow.console.routes import install

__all__ = ["install"]
