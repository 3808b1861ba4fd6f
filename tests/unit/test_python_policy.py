"""The ``python:`` policy: allow list by name or prefix, trusted folders, no imports to decide."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tideflow.cli import app
from tideflow.errors import FunctionCallError, InvalidArgument
from tideflow.runtime.functions import FunctionInvoker, Invocation
from tideflow.runtime.functions.policy import PythonPolicy, module_file
from tideflow.runtime.functions.python import load_function
from tideflow.settings import Settings
from tideflow.workflow import load_and_validate
from tideflow.workflow._defs import FunctionDef

# Each module below writes a marker file when it is executed.
MARKING = 'from pathlib import Path\nPath(__file__).with_suffix(".ran").write_text("ran")\n'
NAMES = ("tfpol_mod", "tfpol_pkg", "tfpol_pkg.sub", "tfpol_reach", "tfpol_nest", "tfpol_nest.inner")


@pytest.fixture(autouse=True)
def _forget_test_modules() -> Iterator[None]:
    yield
    for name in NAMES:
        sys.modules.pop(name, None)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A trusted folder: a module and a package (with a submodule) that mark when run."""
    (tmp_path / "tfpol_mod.py").write_text(MARKING + "def hello(args):\n    return 'hi'\n")
    package = tmp_path / "tfpol_pkg"
    package.mkdir()
    (package / "__init__.py").write_text(MARKING)
    (package / "sub.py").write_text(MARKING + "def fn(args):\n    return 1\n")
    return tmp_path


def ran(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*.ran"))


@pytest.mark.parametrize(
    ("allowed", "module", "ok"),
    [
        ("email", "email", True),
        ("email", "email.utils", True),
        ("email", "email.mime.text", True),
        ("email", "emailx", False),
        ("email", "emai", False),
        ("email.mime", "email.mime.text", True),
        ("email.mime", "email", False),
        ("email.mime", "email.mimex", False),
        ("email", "subprocess", False),
    ],
)
def test_an_allowed_name_allows_itself_and_its_submodules_only(
    allowed: str, module: str, ok: bool
) -> None:
    assert PythonPolicy.for_server([allowed]).allows_module(module) is ok


def test_the_refusal_names_the_module_and_how_to_allow_it() -> None:
    policy = PythonPolicy.for_server(["json"])
    assert policy.refusal("python:json:dumps") is None
    assert policy.refusal("python:subprocess:run") == (
        "python module 'subprocess' is not allowed on this server; "
        "start tideflow serve with --allow-python subprocess "
        "(or TIDEFLOW_PYTHON_MODULES=subprocess)"
    )
    assert "--allow-python os.path" in str(policy.refusal("python:os.path:join"))


@pytest.mark.parametrize(
    ("operation", "words"),
    [
        ("python:json", "is not 'python:package.module:function'"),
        ("python::dumps", "is not 'python:package.module:function'"),
        ("python:../json:dumps", "is not a Python module name"),
        ("python:.json:dumps", "is not a Python module name"),
        ("python:json:_default_encoder.encode", "is private"),
        ("python:json:JSONEncoder.__init__", "is private"),
    ],
)
def test_malformed_or_private_references_are_refused(operation: str, words: str) -> None:
    reason = PythonPolicy.for_server(["json"]).refusal(operation)
    assert reason is not None
    assert words in reason


def test_allow_all_refuses_nothing() -> None:
    policy = PythonPolicy.everything()
    assert policy.refusal("python:subprocess:run") is None
    assert policy.refusal("python:json:_private") is None
    assert policy.allows_module("os")


@pytest.mark.parametrize("bad", ["os;x", "../x", ".x", "a..b", "a b", "1abc"])
def test_an_allow_list_entry_that_is_no_module_name_is_an_error(bad: str) -> None:
    with pytest.raises(InvalidArgument, match="is not a Python module name") as caught:
        PythonPolicy.for_server([bad])
    assert caught.value.argument == "allow-python"


def test_the_allow_list_drops_blanks_and_repeats() -> None:
    assert PythonPolicy.for_server([" json ", "", "json", "email"]).modules == ("json", "email")


def test_modules_in_a_trusted_folder_are_allowed_without_running_them(folder: Path) -> None:
    policy = PythonPolicy.for_server(folders=[folder])
    assert policy.allows_module("tfpol_mod")
    assert policy.allows_module("tfpol_pkg")
    assert policy.allows_module("tfpol_pkg.sub")
    assert policy.refusal("python:tfpol_pkg.sub:fn") is None
    assert not policy.allows_module("tfpol_pkg.missing")
    assert not policy.allows_module("tfpol_absent")
    assert module_file("tfpol_pkg.sub", [folder]) == (folder / "tfpol_pkg" / "sub.py").resolve()
    assert ran(folder) == []  # neither the module nor the package's __init__ ran
    assert not {"tfpol_mod", "tfpol_pkg", "tfpol_pkg.sub"} & set(sys.modules)


def test_modules_outside_the_folders_are_refused(folder: Path) -> None:
    policy = PythonPolicy.for_server(folders=[folder])
    for name in ("subprocess", "os", "json", "tideflow.cli"):
        assert not policy.allows_module(name), name


def test_a_folder_module_shadowed_by_an_installed_one_is_refused(folder: Path) -> None:
    # The import would load the standard library's json, not the folder's file.
    (folder / "json.py").write_text(MARKING)
    assert not PythonPolicy.for_server(folders=[folder]).allows_module("json")
    assert ran(folder) == []


def test_installed_code_inside_a_trusted_folder_does_not_count() -> None:
    stdlib_parent = Path(json.__file__).resolve().parents[1]  # .../lib/python3.11
    policy = PythonPolicy.for_server(folders=[stdlib_parent.parent])
    assert not policy.allows_module("json")
    assert not policy.allows_module("subprocess")


def test_built_in_modules_never_lie_in_a_folder(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Their origin is the relative name "built-in": it must not resolve into the cwd.
    monkeypatch.chdir(folder)
    policy = PythonPolicy.for_server(folders=[Path(".")])
    assert not policy.allows_module("builtins")
    assert not policy.allows_module("sys")
    assert policy.allows_module("tfpol_mod")


def test_a_module_already_imported_is_judged_by_its_own_file(folder: Path) -> None:
    sys.path.insert(0, str(folder))
    try:
        __import__("tfpol_mod")
    finally:
        sys.path.remove(str(folder))
    assert PythonPolicy.for_server(folders=[folder]).allows_module("tfpol_mod")
    assert not PythonPolicy.for_server(folders=[folder / "elsewhere"]).allows_module("tfpol_mod")


DEFINITION = """\
id: mixed
specVersion: "0.8"
start: S
functions:
  - name: shell
    type: custom
    operation: python:subprocess:run
  - name: pets
    operation: http://example.com/pets.json#getPet
  - name: dump
    type: custom
    operation: python:json:dumps
  - name: q
    type: graphql
    operation: python:os:system
  - name: system
    operation: python:os:system
states:
  - name: S
    type: inject
    data: {}
    end: true
"""


def test_problems_point_at_each_refused_function_operation() -> None:
    model, _ = load_and_validate(DEFINITION, local_files=False)
    problems = PythonPolicy.for_server(["json"]).problems(model.functions)
    assert [p.path for p in problems] == [
        ("functions", 0, "operation"),
        ("functions", 4, "operation"),
    ]
    assert all(p.severity == "error" for p in problems)
    assert "'subprocess' is not allowed" in problems[0].message
    assert "'os' is not allowed" in problems[1].message
    assert PythonPolicy.everything().problems(model.functions) == []


async def test_a_refused_call_fails_forbidden_and_imports_nothing(tmp_path: Path) -> None:
    (tmp_path / "tfpol_mod.py").write_text(MARKING + "def hello(args):\n    return 'hi'\n")
    call = Invocation(
        name="hi", type="custom", operation="python:tfpol_mod:hello", base_dir=tmp_path
    )
    async with FunctionInvoker() as invoker:
        with pytest.raises(FunctionCallError) as caught:
            await PythonPolicy.for_server().guard(call, invoker.invoke)
        assert caught.value.code == "FORBIDDEN"
        assert caught.value.retryable is False
        assert "function 'hi' refused: python module 'tfpol_mod' is not allowed" in str(
            caught.value
        )
        assert ran(tmp_path) == []
        assert "tfpol_mod" not in sys.modules
        # The same call under a policy trusting the folder goes through.
        trusted = PythonPolicy.for_server(folders=[tmp_path])
        assert await trusted.guard(call, invoker.invoke) == "hi"
    assert ran(tmp_path) == ["tfpol_mod.ran"]


async def test_guard_passes_other_function_types_untouched() -> None:
    seen: list[str] = []

    async def invoke(call: Invocation) -> Any:
        seen.append(call.operation)
        return "done"

    rest = Invocation(name="r", operation="rest:get:http://example.com/x", type="custom")
    assert await PythonPolicy.for_server().guard(rest, invoke) == "done"
    assert seen == ["rest:get:http://example.com/x"]


def test_an_attribute_path_does_not_lead_into_another_module(tmp_path: Path) -> None:
    (tmp_path / "tfpol_reach.py").write_text("import os\n\ndef ok(args):\n    return 1\n")
    nest = tmp_path / "tfpol_nest"
    nest.mkdir()
    (nest / "__init__.py").write_text("from . import inner\n")
    (nest / "inner.py").write_text("def fn(args):\n    return 2\n")
    with pytest.raises(FunctionCallError, match="reaches module 'os' through 'tfpol_reach'"):
        load_function("python:tfpol_reach:os.system", tmp_path)
    assert load_function("python:tfpol_reach:ok", tmp_path)({}) == 1
    assert load_function("python:tfpol_nest:inner.fn", tmp_path)({}) == 2  # its own submodule


def test_settings_read_the_allow_list_from_the_environment() -> None:
    settings = Settings.from_env({"TIDEFLOW_PYTHON_MODULES": "json, email.mime ,,"})
    assert settings.python_modules == ("json", "email.mime")
    assert Settings.from_env({}).python_modules == ()


def test_serve_refuses_a_bad_allow_python_before_starting() -> None:
    result = CliRunner().invoke(app, ["serve", "--allow-python", "os;rm"])
    assert result.exit_code == 2
    assert "--allow-python / TIDEFLOW_PYTHON_MODULES: 'os;rm' is not a Python module" in (
        result.output
    )


def test_a_module_the_server_cannot_import_is_refused_with_the_whole_way_to_call_it(
    tmp_path: Path,
) -> None:
    """Issue 19: '--allow-python example_functions' alone led to FunctionNotFound at run time."""
    refusal = str(PythonPolicy.for_server().refusal("python:nowhere_zq.mod:f"))
    assert "is not allowed on this server nor can it import it" in refusal
    assert "put nowhere_zq/mod.py in a folder and start tideflow serve with --workflows" in refusal
    assert "--allow-python nowhere_zq.mod" in refusal
    (tmp_path / "nowhere_zq_b.py").write_text("def f(args):\n    return 1\n")
    assert PythonPolicy.for_server(folders=[tmp_path]).refusal("python:nowhere_zq_b:f") is None


def test_an_allowed_module_the_server_cannot_import_is_a_deploy_warning() -> None:
    functions = [
        FunctionDef(name="a", operation="python:nowhere_zq:f", type="custom"),
        FunctionDef(name="b", operation="python:json:dumps", type="custom"),
    ]
    warnings = PythonPolicy.for_server(["nowhere_zq", "json"]).warnings(functions)
    assert [(w.path, w.severity) for w in warnings] == [(("functions", 0, "operation"), "warning")]
    assert "allowed but this server cannot import it" in warnings[0].message
    assert PythonPolicy.for_server(["nowhere_zq"]).problems(functions[:1]) == []


def test_validate_says_what_a_server_needs_for_each_python_module() -> None:
    examples = Path(__file__).resolve().parents[2] / "examples" / "workflows"
    result = CliRunner().invoke(app, ["validate", str(examples / "order-checkout.yaml")])
    assert result.exit_code == 0, result.output
    notes = [line for line in result.output.splitlines() if "note:" in line]
    assert len(notes) == 1  # one per module, not per function
    assert (
        f"module 'example_functions' only if you start tideflow serve with --workflows {examples}"
        in notes[0]
    )
