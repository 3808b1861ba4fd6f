"""Test helpers: real HTTP services on 127.0.0.1 for the function invokers."""

from __future__ import annotations
