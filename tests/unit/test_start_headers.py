"""What a start request's headers leave for ``$WORKFLOW.headers`` (tideflow.api.start_headers)."""

from __future__ import annotations

from tideflow.api.start_headers import MAX_BYTES, MAX_HEADERS, kept_headers


def test_names_lower_cased_and_repeated_values_concatenated() -> None:
    raw = [(b"X-Request-Source", b"web"), (b"X-Multi", b"a"), (b"x-multi", b"b")]
    assert kept_headers(raw) == {"x-request-source": "web", "x-multi": "ab"}


def test_credentials_are_left_out() -> None:
    names = [
        b"Authorization",
        b"Proxy-Authorization",
        b"Cookie",
        b"X-CSRF-Token",
        b"X-XSRF-TOKEN",
        b"X-Api-Key",
        b"X-Client-Secret",
        b"X-Password",
        b"X-Auth-Token",
        b"X-Session-Id",
    ]
    assert kept_headers([(name, b"v") for name in names] + [(b"Accept", b"*/*")]) == {
        "accept": "*/*"
    }


def test_at_most_64_headers() -> None:
    kept = kept_headers([(f"x-h{i}".encode(), b"v") for i in range(MAX_HEADERS + 10)])
    assert len(kept) == MAX_HEADERS
    assert "x-h0" in kept
    assert f"x-h{MAX_HEADERS}" not in kept


def test_at_most_8_kib_of_names_and_values() -> None:
    big = b"x" * 3000
    kept = kept_headers([(b"x-a", big), (b"x-b", big), (b"x-c", big), (b"x-d", b"small")])
    assert list(kept) == ["x-a", "x-b"]
    assert sum(len(k) + len(v) for k, v in kept.items()) <= MAX_BYTES
