"""The curated public API of ``tideflow.workflow`` does not drift."""

from __future__ import annotations

import dataclasses
import inspect
import subprocess
import sys

import tideflow.workflow as workflow
from tideflow.workflow import model

LOADING_AND_VALIDATION = {
    "Workflow",
    "load_and_validate",
    "load_file",
    "load_workflow",
    "parse_document",
    "validate_document",
}


def test_loading_and_validation_are_exported() -> None:
    assert set(workflow.__all__) >= LOADING_AND_VALIDATION


def test_every_export_exists_and_is_documented() -> None:
    for name in workflow.__all__:
        value = getattr(workflow, name)
        assert inspect.getdoc(value), name


def test_no_public_name_is_left_out_of_all() -> None:
    public = {
        name
        for name, value in vars(workflow).items()
        if not name.startswith("_") and not inspect.ismodule(value) and name != "annotations"
    }
    assert public <= set(workflow.__all__)


def test_every_model_class_is_exported_frozen_and_slotted() -> None:
    classes = {
        name
        for name, value in vars(model).items()
        if inspect.isclass(value) and dataclasses.is_dataclass(value)
    }
    assert classes <= set(model.__all__)
    for name in classes:
        cls = getattr(model, name)
        params = cls.__dataclass_params__
        assert params.frozen, name
        assert "__slots__" in vars(cls), name


def test_importing_the_workflow_package_does_no_network_imports() -> None:
    code = "import sys, tideflow.workflow; print(sorted({'httpx', 'asyncpg'} & set(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"
