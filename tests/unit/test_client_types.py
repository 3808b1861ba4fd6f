"""tideflow.client's typed answers agree with the API's own description of them."""

from __future__ import annotations

from typing import get_type_hints

from tideflow.api.schemas import InstanceOut
from tideflow.client import Instance


def test_an_instance_has_the_keys_of_the_status_api() -> None:
    assert set(get_type_hints(Instance)) == set(InstanceOut.model_fields)
