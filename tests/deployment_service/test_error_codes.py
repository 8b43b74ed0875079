"""The error-code registry against everything that could disagree with it: the docs page, the
exception classes, every code literal in the server code, and the codes input fields can produce."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
import re

from django.conf import settings
from django.core.validators import RegexValidator
import django_filters
import pytest
from rest_framework import serializers
from rest_framework.validators import UniqueValidator

from deployment_service import error_codes
from deployment_service.error_codes import ErrorCode, Kind
from deployment_service.exceptions import ApplicationError

ROOT = Path(settings.BASE_DIR)
SERVER_PACKAGES = ["deployment_service", "pipelines", "releases", "events", "hooks"]
DOC = ROOT / "docs" / "errors.md"
REGISTERED = {code.value for code in ErrorCode}
REGENERATE = "run: python -m deployment_service.error_codes --write docs/errors.md"


def server_modules() -> list[Path]:
    return sorted(
        path for package in SERVER_PACKAGES for path in (ROOT / package).rglob("*.py") if "migrations" not in path.parts
    )


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def all_subclasses(cls: type) -> list[type]:
    return [sub for direct in cls.__subclasses__() for sub in (direct, *all_subclasses(direct))]


# --- the registry itself ------------------------------------------------------------------------


@pytest.mark.parametrize("code", list(ErrorCode), ids=str)
def test_each_code_is_snake_case_with_error_statuses_and_a_meaning(code):
    assert re.fullmatch(r"[a-z]+(_[a-z]+)*", code.value)
    assert code.statuses and all(400 <= status <= 599 for status in code.statuses)
    assert code.meaning.strip() and code.kind in Kind
    if code.kind == Kind.FIELD:
        assert code.statuses == (400,), "field codes only come in a 400 invalid body"


def test_a_code_string_can_be_registered_only_once():
    with pytest.raises(ValueError, match="duplicate"):

        @error_codes.enum.unique
        class Twice(error_codes.enum.StrEnum):
            FIRST = "same"
            SECOND = "same"

    # ErrorCode is decorated the same way, so an alias would have failed its import.
    assert len({code.value for code in ErrorCode}) == len(ErrorCode)


def test_the_members_are_their_code_strings():
    assert ErrorCode.NOT_FOUND == "not_found" and ErrorCode("invalid_name") is ErrorCode.INVALID_NAME


# --- the docs page ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(Kind), ids=str)
def test_the_docs_table_is_the_registry(kind):
    documented = error_codes.documented_table(DOC.read_text(), kind)
    assert documented is not None, f"docs/errors.md lacks the {kind} table markers"
    assert documented == error_codes.markdown_table(kind), f"docs/errors.md is out of date; {REGENERATE}"


def test_rewriting_the_doc_fills_the_tables_and_keeps_the_prose():
    stale = "intro\n<!-- error-codes:body:start -->\nSTALE TABLE\n<!-- error-codes:body:end -->\nmid\n"
    stale += "<!-- error-codes:field:start --><!-- error-codes:field:end -->\nend\n"
    fresh = error_codes.rewrite_doc(stale)
    assert (
        fresh.startswith("intro\n") and "\nmid\n" in fresh and fresh.endswith("\nend\n") and "STALE TABLE" not in fresh
    )
    for kind in Kind:
        assert error_codes.documented_table(fresh, kind) == error_codes.markdown_table(kind)
    with pytest.raises(ValueError, match="markers"):
        error_codes.rewrite_doc("no markers here")


def test_the_readme_links_the_error_codes_page():
    assert "(docs/errors.md)" in (ROOT / "README.md").read_text()


# --- exception classes --------------------------------------------------------------------------


def test_every_application_error_has_a_registered_body_code_and_status():
    for path in server_modules():
        if path.name == "exceptions.py" or path.parent.name == "integrations":
            importlib.import_module(module_name(path))
    classes = all_subclasses(ApplicationError)
    assert len(classes) > 30, "the exception modules were not all imported"
    for cls in classes:
        assert isinstance(cls.code, ErrorCode) and cls.code.kind == Kind.BODY, cls
        assert cls.http_status in cls.code.statuses, cls


def test_a_class_with_an_unregistered_code_fails_when_defined():
    with pytest.raises(TypeError, match="must be a body code of ErrorCode"):

        class Unregistered(ApplicationError):
            code = "made_up"  # type: ignore[assignment]

    with pytest.raises(TypeError, match="must be a body code"):

        class FieldCodeAsBody(ApplicationError):
            code = ErrorCode.INVALID_NAME


def test_a_class_with_a_status_its_code_is_not_registered_for_fails_when_defined():
    with pytest.raises(TypeError, match="answers 500, but 'not_found' is registered for"):

        class WrongStatus(ApplicationError):
            code = ErrorCode.NOT_FOUND
            http_status = 500


# --- code literals in the server code -----------------------------------------------------------


def code_literals(tree: ast.AST) -> list[tuple[int, str]]:
    """String literals given as an error code: ``code = "x"``, ``code="x"``, ``{"code": "x"}``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "code" for t in node.targets):
            values = [node.value]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == "code":
            values = [node.value] if node.value else []
        elif isinstance(node, ast.Call):
            values = [kw.value for kw in node.keywords if kw.arg == "code"]
        elif isinstance(node, ast.Dict):
            values = [
                v
                for k, v in zip(node.keys, node.values, strict=True)
                if isinstance(k, ast.Constant) and k.value == "code"
            ]
        else:
            continue
        found += [(v.lineno, v.value) for v in values if isinstance(v, ast.Constant) and isinstance(v.value, str)]
    return found


def error_code_references(tree: ast.AST) -> list[tuple[int, str]]:
    return [
        (node.lineno, node.attr)
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "ErrorCode"
    ]


def test_the_scan_sees_each_way_of_writing_a_code():
    source = 'class A:\n    code = "a"\nf(code="b")\nx = {"code": "c", "other": "d"}\ncode: str = "e"\n'
    assert sorted(value for _, value in code_literals(ast.parse(source))) == ["a", "b", "c", "e"]


def test_the_server_code_names_every_error_code_through_the_registry():
    """A bare string could be a typo or an unregistered code; ``ErrorCode.X`` cannot."""
    bare, unknown = [], []
    for path in server_modules():
        tree = ast.parse(path.read_text(), filename=str(path))
        where = path.relative_to(ROOT)
        bare += [f"{where}:{line}: {value!r}" for line, value in code_literals(tree)]
        unknown += [
            f"{where}:{line}: ErrorCode.{name}"
            for line, name in error_code_references(tree)
            if name not in ErrorCode.__members__
        ]
    assert not bare, "use an ErrorCode member (register it in deployment_service/error_codes.py):\n" + "\n".join(bare)
    assert not unknown, "not in the registry:\n" + "\n".join(unknown)


# --- codes that input fields can produce --------------------------------------------------------


def input_serializers() -> list[type[serializers.Serializer]]:
    found = []
    # The event log's API lives in pipelines.api (events is a lower layer without an API).
    for name in ["pipelines.api.serializers", "releases.api.serializers", "pipelines.api.event_serializers"]:
        module = importlib.import_module(name)
        found += [
            value
            for value in vars(module).values()
            if isinstance(value, type)
            and issubclass(value, serializers.Serializer)
            and value.__module__ == module.__name__
        ]
    return found


def filtersets() -> list[type[django_filters.FilterSet]]:
    found = []
    for name in ["pipelines.api.views", "pipelines.api.event_views"]:
        module = importlib.import_module(name)
        found += [
            value
            for value in vars(module).values()
            if isinstance(value, type)
            and issubclass(value, django_filters.FilterSet)
            and value.__module__ == module.__name__
        ]
    return found


def validator_codes(validators) -> set[str]:
    codes = set()
    for validator in validators:
        if isinstance(validator, UniqueValidator):
            codes.add("unique")  # DRF raises it with code="unique" but keeps no attribute for it
        elif isinstance(validator, RegexValidator) or hasattr(validator, "code"):
            codes.add(validator.code)
        # A plain function validator raises its own ValidationError(code=...), which the literal scan
        # above makes an ErrorCode member.
    return codes


def writable_field_codes(serializer: serializers.Serializer) -> dict[str, set[str]]:
    codes: dict[str, set[str]] = {}
    for name, field in serializer.fields.items():
        if field.read_only:
            continue
        codes[name] = set(field.error_messages) | validator_codes(field.validators)
        if isinstance(field, serializers.Serializer):
            for inner, inner_codes in writable_field_codes(field).items():
                codes[f"{name}.{inner}"] = inner_codes
    return codes


def test_the_inputs_are_found():
    names = {cls.__name__ for cls in input_serializers()} | {cls.__name__ for cls in filtersets()}
    assert {"PipelineCreateSerializer", "DeployRequestSerializer", "ReleaseUploadSerializer", "PipelineFilter"} <= names
    fields = writable_field_codes(importlib.import_module("pipelines.api.serializers").PipelineCreateSerializer())
    assert {"invalid_name", "unique", "required"} <= fields["name"]


def test_every_code_an_input_field_can_produce_is_registered():
    unregistered = []
    for cls in input_serializers():
        serializer = cls()
        for field, codes in writable_field_codes(serializer).items():
            unregistered += [f"{cls.__name__}.{field}: {code}" for code in codes if code not in REGISTERED]
        unregistered += [f"{cls.__name__}: {code}" for code in serializer.error_messages if code not in REGISTERED]
    for cls in filtersets():
        for name, field in cls().form.fields.items():
            codes = set(field.error_messages) | validator_codes(field.validators)
            unregistered += [f"{cls.__name__}.{name}: {code}" for code in codes if code not in REGISTERED]
    assert not unregistered, "register these field codes in deployment_service/error_codes.py:\n" + "\n".join(
        sorted(set(unregistered))
    )
