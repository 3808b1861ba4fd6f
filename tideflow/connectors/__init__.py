"""Tideflow connectors: sources (an external system -> CloudEvents on a bus) and sinks
(a bus -> an external system), declared as data and scaled from zero.

See ``docs/connectors.md``; the model is :mod:`tideflow.connectors.spec`, the
interface :mod:`tideflow.connectors.base`, the service that runs them
:mod:`tideflow.connectors.service`.
"""

from __future__ import annotations

from tideflow.connectors.spec import Connector, ConnectorKind, ConnectorSpec, parse_connector

__all__ = ["Connector", "ConnectorKind", "ConnectorSpec", "parse_connector"]
