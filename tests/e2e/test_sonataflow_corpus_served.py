"""SonataFlow workflows deployed by ``tideflow serve --workflows DIR --dialect sonataflow``.

A folder with some of the corpus's workflows (and the schemas they ``$ref``)
is served with the dialect and the corpus's stand-ins; each instance started
through the API ends with the output SonataFlow's semantics give, as under
``tideflow run`` (tests/e2e/test_sonataflow_corpus.py). The files keep
SonataFlow's names (``NAME.sw.yaml``), which a folder deploys.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.support.served import serve_process, start_and_wait

CORPUS = Path(__file__).resolve().parents[1] / "sonataflow_corpus"
CASES = {
    "greeting-service-java": "greeting",
    "arguments-one-expression": "args-expr",
    "switch-without-default-matches": "route",
    "foreach-prev-action-result": "chain",
    "data-input-schema-sibling-ref": "order-checked",
    "legacy-braces-condition": "legacy-condition",
}


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "flows"
    folder.mkdir()
    for name in CASES:
        shutil.copy(CORPUS / f"{name}.sw.yaml", folder / f"{name}.sw.yaml")
    shutil.copytree(CORPUS / "schemas", folder / "schemas")
    return folder


@pytest.mark.timeout(180)
def test_a_folder_deployed_with_the_dialect_runs_as_sonataflow(pg_url: str, tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    (tmp_path / "home").mkdir()
    args = ("--workflows", str(folder), "--dialect", "sonataflow")
    with serve_process(
        pg_url, tmp_path / "home", *args, "--functions", str(CORPUS / "standins.py")
    ) as served:
        for name, workflow_id in CASES.items():
            data = json.loads((CORPUS / f"{name}.input.json").read_text())
            expected = json.loads((CORPUS / f"{name}.expected.json").read_text())
            done = start_and_wait(served.url, workflow_id, data)
            assert (done["status"], done.get("output")) == ("completed", expected), (name, done)
