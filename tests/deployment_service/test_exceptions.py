"""The DRF exception handler as a client sees it: 400 bodies keep each field's code beside its
messages, and the other error bodies keep their shape."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
import pytest
from rest_framework.test import APIClient

from deployment_service.exceptions import api_exception_handler
from pipelines.models import Pipeline
from tests.factories import PipelineFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/pipelines/"


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"name": "Not-A-Label"}, "name", "invalid_name"),
        ({"name": "site", "repository": "noslash"}, "repository", "invalid_repository"),
        ({"name": "site", "branch": "bad..branch"}, "branch", "invalid_branch"),
        ({"repository": "octo-org/site"}, "name", "required"),
        ({"name": ""}, "name", "blank"),
        ({"name": "a" * 64}, "name", "max_length"),
    ],
)
def test_a_field_error_keeps_its_code(api, body, field, code):
    response = api.post(URL, body, format="json")
    assert response.status_code == 400
    answer = response.json()
    assert answer["code"] == "invalid" and answer["detail"] == "Invalid input."
    assert code in answer["error_codes"][field], answer
    assert len(answer["error_codes"][field]) == len(answer["errors"][field])
    assert not Pipeline.objects.exists()


def test_the_codes_mirror_the_messages_key_for_key_in_nested_inputs(api):
    response = api.post(URL, {"name": "Bad Name", "build": {"output_dir": "../up"}}, format="json")
    answer = response.json()
    assert response.status_code == 400
    assert answer["errors"]["build"]["output_dir"] == [
        "The output directory must be a relative path inside the repository (no leading '/', no '..', no backslashes)."
    ]
    assert answer["error_codes"] == {"name": ["invalid_name"], "build": {"output_dir": ["invalid_output_dir"]}}


def test_a_taken_name_is_unique(api, other_user):
    PipelineFactory(name="taken", owner=other_user)
    answer = api.post(URL, {"name": "taken"}, format="json").json()
    assert answer["error_codes"] == {"name": ["unique"]}


def test_a_filter_error_keeps_its_code(api):
    response = api.get(URL + "?status=deployed,bogus")
    assert response.status_code == 400
    assert response.json()["error_codes"] == {"status": ["invalid_choice"]}


def test_a_django_validation_error_from_a_service_keeps_its_codes():
    """Services run ``full_clean`` (and turn a unique-constraint race into a ValidationError)."""
    exc = DjangoValidationError(
        {"name": [DjangoValidationError("A pipeline with this name already exists.", code="unique")]}
    )
    response = api_exception_handler(exc, {})
    assert response is not None and response.status_code == 400
    assert response.data["errors"] == {"name": ["A pipeline with this name already exists."]}
    assert response.data["error_codes"] == {"name": ["unique"]}


def test_a_django_validation_error_without_fields_or_code_is_invalid():
    response = api_exception_handler(DjangoValidationError("Nope %(what)s.", params={"what": "here"}), {})
    assert response is not None
    # errors of no one field sit under DRF's non-field key, so `errors` is always an object
    assert response.data["errors"] == {"non_field_errors": ["Nope here."]}
    assert response.data["error_codes"] == {"non_field_errors": ["invalid"]}


def test_other_error_bodies_carry_no_field_codes(api, other_user):
    theirs = PipelineFactory(owner=other_user)
    answer = api.get(f"{URL}{theirs.id}/").json()
    assert answer == {"code": "not_found", "detail": answer["detail"]}
    response = APIClient().get(URL)
    assert response.status_code == 401
    assert set(response.json()) == {"code", "detail"} and response.json()["code"] == "not_authenticated"
