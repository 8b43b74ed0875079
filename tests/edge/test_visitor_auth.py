"""Visitor passwords at the edge: the credential format shared by edge/rules.py and the viewer
function, the emulated runtime the local edge gives the function (checked against hashlib and
base64, so the vectors' answers are CloudFront's), the 401 the function answers, and troy.json's
basic_auth hashed so that the clear password never reaches the manifest."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from edge.local import ViewerFunction
from edge.manifest import Manifest, dumps
from edge.rules import Rules, RulesError, credential_make
from tests.edge.conftest import VECTORS
from tests.edge.test_viewer_request import viewer_event

TEXTS = [
    "",
    "abc",
    "a" * 55,
    "a" * 56,
    "b" * 63,
    "c" * 64,
    "d" * 65,
    "e" * 1000,
    "salt:ünï:pässwörd 😀",
    "\u00ff\u0100",
]


@pytest.mark.parametrize("text", TEXTS)
def test_the_emulated_sha256_is_sha256(viewer, text):
    expression = f"require('crypto').createHash('sha256').update({json.dumps(text)}).digest('hex')"
    assert viewer._ctx.eval(expression) == hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize("text", ["", "a", "ab", "abc", "alice:s3cret", "ünï:pässwörd 😀", "x" * 100])
def test_the_emulated_buffer_decodes_base64_as_utf8(viewer, text):
    encoded = base64.b64encode(text.encode()).decode()
    assert viewer._ctx.eval(f"Buffer.from({json.dumps(encoded)}, 'base64').toString('utf8')") == text


def test_the_vectors_credentials_are_what_troy_makes():
    for made in VECTORS["auth_credentials"]["made"]:
        assert (
            credential_make(username=made["username"], password=made["password"], salt=made["salt"])
            == made["credential"]
        )


def test_the_401_names_the_host_and_is_never_cached(viewer):
    answer = viewer.run(viewer_event({"host": "Locked.Example.com:443", "uri": "/"}))
    assert answer["statusCode"] == 401
    assert answer["headers"]["www-authenticate"] == {"value": 'Basic realm="locked.example.com", charset="UTF-8"'}
    assert answer["headers"]["cache-control"] == {"value": "no-store"}


def test_a_request_let_through_keeps_its_headers_for_downstream(viewer):
    event = viewer_event({"host": "locked.example.com", "uri": "/about/"})
    header = "Basic " + base64.b64encode(b"alice:s3cret").decode()
    event["request"]["headers"]["authorization"] = {"value": header}
    event["request"]["headers"]["accept-language"] = {"value": "de"}
    answer = viewer.run(event)
    assert answer["uri"] == "/p1/b1/about/"
    assert answer["headers"]["authorization"] == {"value": header}
    assert answer["headers"]["accept-language"] == {"value": "de"}


def test_old_pointer_values_without_auth_keep_working():
    viewer = ViewerFunction({"h": "p1/b1", "j": '{"pipeline": "p1", "build": "b1"}'}.get)
    assert viewer.run(viewer_event({"host": "h", "uri": "/"}))["uri"] == "/p1/b1/"
    assert viewer.run(viewer_event({"host": "j", "uri": "/"}))["uri"] == "/p1/b1/"


def test_basic_auth_is_hashed_with_the_builds_salt_and_never_kept_in_clear():
    config = json.dumps(
        {"basic_auth": [{"username": "alice", "password": "pw-one"}, {"username": "bob", "password": "pw-two"}]}
    )
    rules = Rules.build(config_text=config, salt="0123456789abcdef")
    assert rules.credentials == [
        credential_make(username="alice", password="pw-one", salt="0123456789abcdef"),
        credential_make(username="bob", password="pw-two", salt="0123456789abcdef"),
    ]
    stored = json.dumps(rules.to_dict())
    assert "pw-one" not in stored and "pw-two" not in stored
    assert Rules.from_dict(rules.to_dict()).credentials == rules.credentials
    manifest = Manifest(pipeline_id="p1", build_id="b1", files={}, rules=rules.to_dict())
    assert b"pw-one" not in dumps(manifest)
    # A random salt per build: the same password hashes differently in the next build.
    assert Rules.build(config_text=config).credentials != Rules.build(config_text=config).credentials
    assert "pw-one" not in repr(rules)


def test_a_refused_basic_auth_does_not_echo_the_password():
    with pytest.raises(RulesError) as refused:
        Rules.build(config_text=json.dumps({"basic_auth": {"username": "a:b", "password": "hunter2"}}))
    assert "hunter2" not in str(refused.value)


@pytest.mark.parametrize(
    "config",
    [
        {"basic_auth": {"username": "alice", "password": "s3cret"}},
        {"basic_auth": [{"username": "a", "password": "1"}, {"username": "ünï", "password": "pässwörd 😀"}]},
    ],
)
def test_the_published_schema_and_troy_accept_basic_auth(config):
    import jsonschema

    from edge.rules import parse_config
    from tests.edge.test_rules import SCHEMA

    assert not list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(config))
    assert parse_config(json.dumps(config)).basic_auth
