"""``tideflow serve``'s log as an operator reads it: one line per failed instance
(id, workflow, state, error code, not the error's message), ``--log-format json``
(one JSON object a line) and ``--access-log`` (one line per request)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support.served import serve_process

BREAKS = {
    "id": "breaks",
    "version": "1",
    "specVersion": "0.8",
    "start": "Divide",
    "functions": [{"name": "explode", "type": "expression", "operation": 'error("secret 42")'}],
    "states": [
        {
            "name": "Divide",
            "type": "operation",
            "actions": [{"functionRef": "explode"}],
            "end": True,
        }
    ],
}


def _lines(output: str) -> list[dict[str, Any]]:
    """Every line of the server's output that is a JSON object (the CLI's banner is not)."""
    found = []
    for line in output.splitlines():
        if line.startswith("{"):
            found.append(json.loads(line))
    return found


def test_json_log_has_a_line_per_failed_instance_and_per_request(
    pg_url: str, tmp_path: Path
) -> None:
    with serve_process(pg_url, tmp_path, "--log-format", "json", "--access-log") as server:
        with server.client() as http:
            deployed = http.post("/workflows", json=BREAKS)
            assert deployed.status_code == 201, deployed.text
            done = http.post("/workflows/breaks/instances", json={}, params={"wait": 30})
            assert done.json()["status"] == "failed", done.text
            instance_id = done.json()["id"]
            assert http.get(f"/instances/{instance_id}").status_code == 200
        lines = _lines(server.output())
    failed = [line for line in lines if line.get("instance") == instance_id]
    assert len(failed) == 1, lines
    line = failed[0]
    assert line["level"] == "warning"
    assert (line["workflow"], line["state"]) == ("breaks", "Divide")
    assert line["error"]
    assert line["message"].startswith(f"instance {instance_id} failed: workflow breaks")
    assert "secret 42" not in json.dumps(line)  # the message may quote data: not logged
    assert line["time"].endswith("Z")
    requests = [x["message"] for x in lines if x["logger"] == "uvicorn.access"]
    assert any(f'"GET /instances/{instance_id} HTTP/1.1" 200' in m for m in requests), requests
    assert any("/workflows/breaks/instances" in m for m in requests)
    assert all("authorization" not in m.lower() for m in requests)


def test_text_log_names_the_failed_instance_without_access_lines(
    pg_url: str, tmp_path: Path
) -> None:
    with serve_process(pg_url, tmp_path) as server:
        with server.client() as http:
            assert http.post("/workflows", json=BREAKS).status_code == 201
            done = http.post("/workflows/breaks/instances", json={}, params={"wait": 30}).json()
        output = server.output()
    assert done["status"] == "failed"
    mine = [line for line in output.splitlines() if done["id"] in line]
    assert len(mine) == 1, output[-3000:]
    assert mine[0].startswith("WARNING:")
    assert f"instance {done['id']} failed: workflow breaks, state Divide, error " in mine[0]
    assert "HTTP/1.1" not in output  # no access log unless asked
