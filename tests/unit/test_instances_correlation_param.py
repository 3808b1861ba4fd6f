"""``GET /instances?correlation=KEY:VALUE``: how the value is read, and what is refused."""

from __future__ import annotations

import pytest

from tideflow.api.routes.instances import MAX_CORRELATION_CHARS, parse_correlation
from tideflow.errors import InvalidParameter


def test_the_value_is_split_at_the_first_colon() -> None:
    assert parse_correlation(None) is None
    assert parse_correlation("orderid:42") == ("orderid", "42")
    assert parse_correlation("orderid:a:b") == ("orderid", "a:b")
    assert parse_correlation("k: spaced ") == ("k", " spaced ")


@pytest.mark.parametrize(
    "text", ["", "orderid", ":42", "orderid:", ":", "k:" + "v" * MAX_CORRELATION_CHARS]
)
def test_a_malformed_value_is_refused_naming_the_parameter(text: str) -> None:
    with pytest.raises(InvalidParameter) as refused:
        parse_correlation(text)
    assert refused.value.argument == "correlation"
    assert "KEY:VALUE" in str(refused.value)
