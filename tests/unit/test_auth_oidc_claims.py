"""OIDC JWTs, the pure parts: claims checked on a given time, scopes from a claim, JWKS keys."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.oidc import new_key, public_jwk
from tideflow.auth.jwks import check_issuer_url, keys_of
from tideflow.auth.oidc import LEEWAY, OidcConfig, check_claims, looks_like_jwt, scopes_of
from tideflow.errors import AuthenticationRequired, ConfigurationError

CONFIG = OidcConfig(issuer="https://idp.example", audience="tideflow")
NOW = 2_000_000_000.0
GOOD: dict[str, Any] = {
    "iss": "https://idp.example",
    "aud": ["other", "tideflow"],
    "sub": "alice",
    "exp": NOW + 300,
    "nbf": NOW - 10,
    "scope": "openid read publish:orders.* subscribe:tideflow.audit bogus:x",
}


def test_good_claims_make_a_principal_with_the_tideflow_scopes_only() -> None:
    principal = check_claims(GOOD, CONFIG, NOW)
    assert principal.token_id == "oidc:alice"
    assert principal.name == "alice"
    assert principal.scopes == ("read", "publish:orders.*")
    named = check_claims({**GOOD, "email": "a@example.com", "aud": "tideflow"}, CONFIG, NOW)
    assert named.name == "a@example.com"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"iss": "https://idp.example/"}, "issuer"),
        ({"aud": "tideflow2"}, "audience"),
        ({"aud": None}, "audience"),
        ({"exp": NOW - LEEWAY - 1}, "expired"),
        ({"exp": None}, "no expiry"),
        ({"exp": "soon"}, "'exp' is not a number"),
        ({"exp": True}, "'exp' is not a number"),
        ({"nbf": NOW + LEEWAY + 1}, "not valid yet"),
        ({"sub": ""}, "no subject"),
        ({"sub": 7}, "no subject"),
    ],
)
def test_claims_that_do_not_hold_are_refused(changes: dict[str, Any], reason: str) -> None:
    claims = {k: v for k, v in {**GOOD, **changes}.items() if v is not None}
    with pytest.raises(AuthenticationRequired, match=reason):
        check_claims(claims, CONFIG, NOW)


def test_clock_skew_within_the_leeway_is_allowed() -> None:
    skewed = {**GOOD, "exp": NOW - LEEWAY + 1, "nbf": NOW + LEEWAY - 1}
    assert check_claims(skewed, CONFIG, NOW).token_id == "oidc:alice"


def test_scopes_come_from_a_string_or_a_list_in_the_configured_claim() -> None:
    assert scopes_of("read  run read") == ("read", "run")
    assert scopes_of(["deploy", 3, "x"]) == ("deploy",)
    assert scopes_of(None) == scopes_of({"read": True}) == ()
    config = OidcConfig(issuer=CONFIG.issuer, audience="tideflow", scope_claim="scp")
    assert check_claims({**GOOD, "scp": ["admin"]}, config, NOW).scopes == ("admin",)


def test_a_jwt_is_told_from_a_tideflow_token_by_its_shape() -> None:
    assert looks_like_jwt("eyJh.eyJz.c2ln")
    assert looks_like_jwt("eyJh.eyJz.")  # unsigned: refused later, saying why
    assert not looks_like_jwt("tf_0123456789ab_" + "A" * 43)
    assert not looks_like_jwt("a.b")


def test_only_signing_keys_for_rs256_and_p256_are_taken() -> None:
    rsa, ec = new_key("RS256"), new_key("ES256")
    jwks = {
        "keys": [
            public_jwk(rsa, "r", "RS256"),
            public_jwk(ec, "e", "ES256"),
            {**public_jwk(rsa, "enc", "RS256"), "use": "enc"},
            {**public_jwk(rsa, "ps", "RS256"), "alg": "PS256"},
            {**public_jwk(ec, "p384", "ES256"), "crv": "P-384"},
            {"kty": "oct", "kid": "h", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "broken", "n": "AQAB"},
            "not a key",
        ]
    }
    keys = keys_of(jwks)
    assert set(keys) == {"e", "r"}
    assert keys["r"][0] == "RS256"
    assert keys["e"][0] == "ES256"
    assert keys_of({"keys": "none"}) == keys_of([]) == {}


@pytest.mark.parametrize(
    "url", ["http://idp.example", "ftp://127.0.0.1", "https://", "idp.example", "http://[::2]"]
)
def test_keys_come_over_https_or_from_loopback_only(url: str) -> None:
    with pytest.raises(ConfigurationError, match="use an https:// URL"):
        check_issuer_url(url)
    assert check_issuer_url("http://127.0.0.1:9000") == "http://127.0.0.1:9000"
    assert check_issuer_url("https://idp.example/realms/x") == "https://idp.example/realms/x"
