"""DSL 1.0 ``$authorization``: a call's resolved authentication, in its definition and outputs."""

from __future__ import annotations

import base64
from typing import Any

import yaml

from tideflow.runtime.dsl1 import Interpreter
from tideflow.runtime.effects import FunctionCall
from tideflow.runtime.fake import ScriptedEffects
from tideflow.runtime.result import Completed
from tideflow.workflow.dsl1 import load_document

HEAD = "document: {dsl: '1.0.3', namespace: test, name: wf, version: '1.0.0'}\n"


async def run(text: str, secrets: dict[str, Any] | None = None) -> tuple[Any, ScriptedEffects]:
    model, _ = load_document(yaml.safe_load(HEAD + text))
    effects = ScriptedEffects({"fetch": {"ok": True}})
    result = await Interpreter(model, secrets=secrets).run({}, effects)
    assert isinstance(result, Completed), result
    return result, effects


def fetch(authentication: str, output: str = "${ $authorization }", more: str = "") -> str:
    """One ``http`` call with ``authentication`` (flow YAML); ``more``: lines after its ``with``."""
    return f"""
do:
  - fetch:
      call: http
      with:
        method: get
        endpoint:
          uri: https://example.com/pets
          authentication: {authentication}{more}
      output: {{as: '{output}'}}
"""


async def test_a_bearer_token_from_a_secret_is_described_to_the_call_and_its_output() -> None:
    headers = "\n        headers: {X-Scheme: '${ $authorization.scheme }'}"
    text = "use:\n  secrets: [api]" + fetch(
        "{bearer: {token: '${ $secrets.api }'}}", "${ { ok: .ok, auth: $authorization } }", headers
    )
    text += "      export: {as: '${ { scheme: $authorization.scheme } }'}\n"
    text += "  - after: {set: {context: '${ $context }', seen: '${ $authorization }'}}\n"
    result, effects = await run(text, secrets={"api": "t0ken-value"})
    (call,) = [r for r in effects.requests if isinstance(r, FunctionCall)]
    assert call.arguments["headers"] == {"X-Scheme": "Bearer"}
    assert result.output == {"context": {"scheme": "Bearer"}, "seen": None}


async def test_basic_is_the_encoded_pair_and_oauth2_keeps_its_token_in_the_host() -> None:
    basic, _ = await run(fetch("{basic: {username: ada, password: pw}}"))
    assert basic.output == {"scheme": "Basic", "parameter": base64.b64encode(b"ada:pw").decode()}
    oauth2 = "{oauth2: {authority: 'https://auth.example.com', grant: client_credentials, "
    oauth, _ = await run(fetch(oauth2 + "client: {id: me, secret: s}}}"))
    assert oauth.output == {"scheme": "Bearer", "parameter": None}


async def test_a_call_without_authentication_has_none() -> None:
    result, _ = await run("""
do:
  - fetch:
      call: http
      with: {method: get, endpoint: 'https://example.com/pets'}
      output: {as: '${ { auth: $authorization } }'}
""")
    assert result.output == {"auth": None}
