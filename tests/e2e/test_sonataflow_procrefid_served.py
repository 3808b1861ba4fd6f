"""SonataFlow's ``kogitoprocrefid``: an event addressed to one instance, through ``tideflow serve``.

SonataFlow routes a consumed event carrying the CloudEvents extension
``kogitoprocrefid`` to the instance of that id (docs/spec-coverage.md, S21).
A callback workflow deployed with ``?dialect=sonataflow`` has two instances
waiting for the same uncorrelated answer type; each answer, posted in binary
mode with ``ce-kogitoprocrefid``, resumes the instance it names and only that
one. A workflow deployed without the dialect ignores the extension.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.served import serve_process

CALLBACK = """\
id: approval
version: "1"
specVersion: "0.8"
start: AskApproval
events:
  - name: approvalAnswer
    type: approval.answer
    source: ""
functions:
  - name: log
    type: custom
    operation: sysout
states:
  - name: AskApproval
    type: callback
    action:
      functionRef:
        refName: log
        arguments:
          message: "asking"
    eventRef: approvalAnswer
    end: true
"""

STRICT = """\
id: strict-wait
version: "1"
specVersion: "0.8"
start: Wait
events:
  - name: answer
    type: strict.answer
    source: /approvals
    kind: consumed
states:
  - name: Wait
    type: event
    onEvents:
      - eventRefs: [answer]
    end: true
"""

YAML = {"content-type": "application/yaml"}


def _status(http: httpx.Client, instance_id: str, status: str) -> dict[str, Any]:
    """Poll the instance until it has ``status`` (the server's own progress: no clock)."""
    deadline = time.monotonic() + 30
    while True:
        shown: dict[str, Any] = http.get(f"/instances/{instance_id}").json()
        if shown["status"] == status:
            return shown
        assert time.monotonic() < deadline, shown
        time.sleep(0.05)


def _answer(
    http: httpx.Client, kind: str, source: str, event_id: str, refid: str, data: Any
) -> None:
    headers = {
        "ce-specversion": "1.0",
        "ce-id": event_id,
        "ce-source": source,
        "ce-type": kind,
        "ce-kogitoprocrefid": refid,
        "content-type": "application/json",
    }
    response = http.post("/events", headers=headers, json=data)
    assert response.status_code in (200, 201, 202), response.text


def _start(http: httpx.Client, workflow_id: str, data: Any) -> str:
    response = http.post(f"/workflows/{workflow_id}/instances", json=data)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.mark.timeout(120)
def test_kogitoprocrefid_resumes_only_the_instance_it_names(pg_url: str, tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    with serve_process(pg_url, tmp_path / "home") as served, served.client() as http:
        deployed = http.post(
            "/workflows", content=CALLBACK, headers=YAML, params={"dialect": "sonataflow"}
        )
        assert deployed.status_code == 201, deployed.text
        assert http.post("/workflows", content=STRICT, headers=YAML).status_code == 201
        first = _start(http, "approval", {"who": "ada"})
        second = _start(http, "approval", {"who": "bob"})
        strict = _start(http, "strict-wait", {"who": "cy"})
        for instance_id in (first, second, strict):
            _status(http, instance_id, "waiting")

        # The second instance's answer first: the first one, waiting for the same type
        # without correlation, must not take it.
        _answer(http, "approval.answer", "/approvals", "a-2", second, {"answer": "for bob"})
        done = _status(http, second, "completed")
        assert done["output"] == {"who": "bob", "answer": "for bob"}
        _answer(http, "approval.answer", "/approvals", "a-1", first, {"answer": "for ada"})
        done = _status(http, first, "completed")
        assert done["output"] == {"who": "ada", "answer": "for ada"}  # not bob's answer

        # Strict 0.8 reads no kogitoprocrefid: naming another instance changes nothing.
        _answer(http, "strict.answer", "/approvals", "s-1", first, {"answer": "for cy"})
        done = _status(http, strict, "completed")
        assert done["output"] == {"who": "cy", "answer": "for cy"}
