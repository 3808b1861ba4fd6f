"""A stand-in OIDC issuer: signing keys made in the test, its documents on a :class:`RefServer`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jwt
import orjson
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from tests.support.refserver import RefServer

AUDIENCE = "tideflow"


def new_key(algorithm: str) -> Any:
    """A new private key for RS256 or ES256."""
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def public_jwk(key: Any, kid: str, algorithm: str) -> dict[str, Any]:
    """The JWK of ``key``'s public half."""
    codec = RSAAlgorithm if algorithm == "RS256" else ECAlgorithm
    jwk: dict[str, Any] = codec.to_jwk(key.public_key(), as_dict=True)
    return {**jwk, "kid": kid, "use": "sig", "alg": algorithm}


@dataclass
class Issuer:
    """Keys by id, published as the JWKS of the issuer at ``server.url``."""

    server: RefServer
    keys: dict[str, tuple[str, Any]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url

    def add_key(self, kid: str, algorithm: str = "RS256") -> Any:
        """Make a key and publish it (the next JWKS fetch sees it)."""
        key = new_key(algorithm)
        self.keys[kid] = (algorithm, key)
        self.publish()
        return key

    def publish(self) -> None:
        """Serve the discovery document and the JWKS of the current keys."""
        jwks = {"keys": [public_jwk(key, kid, alg) for kid, (alg, key) in self.keys.items()]}
        discovery = {"issuer": self.url, "jwks_uri": f"{self.url}/jwks"}
        self.server.documents["/.well-known/openid-configuration"] = orjson.dumps(
            discovery
        ).decode()
        self.server.documents["/jwks"] = orjson.dumps(jwks).decode()

    def sign(self, kid: str, key: Any = None, algorithm: str | None = None, **claims: Any) -> str:
        """A JWT with ``claims`` over defaults (this issuer, the audience, valid for 10 min)."""
        alg, published = self.keys.get(kid, ("RS256", None))
        now = int(datetime.now(UTC).timestamp())
        body = {"iss": self.url, "aud": AUDIENCE, "sub": "alice", "iat": now, "exp": now + 600}
        body |= claims
        body = {name: value for name, value in body.items() if value is not None}
        return jwt.encode(body, key or published, algorithm=algorithm or alg, headers={"kid": kid})

    def fetches(self) -> int:
        """How many times the JWKS was fetched."""
        return self.server.requests.count("/jwks")
