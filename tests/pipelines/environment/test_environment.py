"""The build environment service: names, scopes, fork builds, encryption at rest, redaction."""

from __future__ import annotations

import pytest

from deployment_service import secret_box
from deployment_service.exceptions import InvalidTransition
from events.models import Event
from pipelines import services
from pipelines.choices import BuildKind, BuildTrigger
from pipelines.choices import PipelineStatus as S
from pipelines.exceptions import (
    EnvLimitReached,
    EnvNameInvalid,
    EnvNameReserved,
    EnvScopeInvalid,
    EnvValueTooLarge,
    VariableNotFound,
)
from pipelines.models import Build, PipelineVariable, Preview
from tests.factories import PipelineFactory, put_in_status

pytestmark = pytest.mark.django_db

SECRET = "sk_live_5f3c9a1e77"


def _build(pipeline, *, number=1, preview=None, from_fork=False) -> Build:
    return Build.objects.create(
        pipeline=pipeline,
        number=number,
        kind=BuildKind.AUTOMATED,
        trigger=BuildTrigger.PUSH,
        preview=preview,
        from_fork=from_fork,
    )


def _set(pipeline, name, value, **kwargs):
    return services.env_variable_set(pipeline_id=pipeline.id, name=name, value=value, actor="alice", **kwargs)


@pytest.fixture
def pipeline(django_capture_on_commit_callbacks):
    return PipelineFactory()


@pytest.fixture
def scoped(pipeline):
    _set(pipeline, "NODE_ENV", "production", scope="production")
    _set(pipeline, "PREVIEW_BANNER", "on", scope="previews")
    _set(pipeline, "SITE_TITLE", "Troy", scope="all")
    _set(pipeline, "API_KEY", SECRET, secret=True, scope="all")
    _set(pipeline, "PROD_TOKEN", "prod-token-value", secret=True, scope="production")
    _set(pipeline, "PREVIEW_TOKEN", "preview-token-value", secret=True, scope="previews")
    return pipeline


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("1ABC", EnvNameInvalid),
        ("A-B", EnvNameInvalid),
        ("", EnvNameInvalid),
        ("É", EnvNameInvalid),
        ("A" * 129, EnvNameInvalid),
        ("AWS_ACCESS_KEY_ID", EnvNameReserved),
        ("aws_region", EnvNameReserved),
        ("CODEBUILD_SRC_DIR", EnvNameReserved),
        ("TROY_BUILD_ID", EnvNameReserved),
        ("PATH", EnvNameReserved),
        ("HOME", EnvNameReserved),
    ],
)
def test_bad_names_are_refused_with_their_code_and_nothing_is_written(pipeline, name, error):
    with pytest.raises(error) as caught:
        _set(pipeline, name, "x")
    assert caught.value.code in ("env_name_invalid", "env_name_reserved")
    assert not PipelineVariable.objects.exists()
    assert not Event.objects.filter(transition="env_set").exists()


@pytest.mark.parametrize("name", ["_X", "NODE_ENV", "a1", "A" * 128, "AWSX", "TROYX"])
def test_good_names(pipeline, name):
    assert _set(pipeline, name, "x").name == name


def test_value_size_count_and_scope_limits(pipeline, settings):
    with pytest.raises(EnvValueTooLarge) as caught:
        _set(pipeline, "BIG", "é" * 2049)  # 4098 bytes in UTF-8
    assert caught.value.extra == {"limit": 4096}
    assert _set(pipeline, "EXACT", "a" * 4096).value == "a" * 4096
    with pytest.raises(EnvScopeInvalid):
        _set(pipeline, "X", "1", scope="staging")
    settings.TROY_ENV_MAX_VARIABLES = 2
    _set(pipeline, "SECOND", "1")
    with pytest.raises(EnvLimitReached):
        _set(pipeline, "THIRD", "1")
    assert _set(pipeline, "SECOND", "2").value == "2"  # replacing one is not adding one


def test_a_secret_is_stored_encrypted_and_the_event_never_holds_a_value(pipeline, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        variable = _set(pipeline, "API_KEY", SECRET, secret=True)
    row = PipelineVariable.objects.get(pk=variable.pk)
    assert SECRET not in row.value
    assert secret_box.decrypt(row.value) == SECRET
    assert row.set_by == "alice" and row.synced_at is None
    assert len(callbacks) == 1  # the SSM copy is a worker's job
    event = Event.objects.get(transition="env_set")
    assert event.message == "Secret API_KEY set (scope all)."
    assert event.from_status == event.to_status == pipeline.status


def test_a_plain_variable_sends_no_ssm_message_unless_it_was_a_secret(pipeline, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        _set(pipeline, "NODE_ENV", "production")
    assert callbacks == []
    _set(pipeline, "TOKEN", SECRET, secret=True)
    with django_capture_on_commit_callbacks() as callbacks:
        _set(pipeline, "TOKEN", "now-plain")  # its SSM copy must go
    assert len(callbacks) == 1


def test_unset(pipeline, django_capture_on_commit_callbacks):
    _set(pipeline, "TOKEN", SECRET, secret=True)
    with django_capture_on_commit_callbacks() as callbacks:
        services.env_variable_unset(pipeline_id=pipeline.id, name="TOKEN", actor="alice")
    assert len(callbacks) == 1
    assert not PipelineVariable.objects.exists()
    assert Event.objects.get(transition="env_unset").message == "Secret TOKEN unset."
    with pytest.raises(VariableNotFound):
        services.env_variable_unset(pipeline_id=pipeline.id, name="TOKEN", actor="alice")


def test_a_pipeline_being_deleted_keeps_its_variables(pipeline):
    _set(pipeline, "A", "1")
    put_in_status(pipeline, S.DELETING)
    with pytest.raises(InvalidTransition):
        _set(pipeline, "B", "2")
    with pytest.raises(InvalidTransition):
        services.env_variable_unset(pipeline_id=pipeline.id, name="A", actor="alice")


def test_production_build_environment_honours_scope(scoped):
    env = services.build_environment(_build(scoped))
    assert env.variables == {"NODE_ENV": "production", "SITE_TITLE": "Troy"}
    assert env.secrets == {"API_KEY": SECRET, "PROD_TOKEN": "prod-token-value"}


def test_preview_build_environment_honours_scope(scoped):
    preview = Preview.objects.create(pipeline=scoped, label="feature", host="feature--x.sites.troy.test")
    env = services.build_environment(_build(scoped, preview=preview))
    assert env.variables == {"PREVIEW_BANNER": "on", "SITE_TITLE": "Troy"}
    assert env.secrets == {"API_KEY": SECRET, "PREVIEW_TOKEN": "preview-token-value"}
    assert env.as_environ()["API_KEY"] == SECRET


def test_a_fork_build_gets_no_secrets(scoped):
    preview = Preview.objects.create(pipeline=scoped, label="pr-7", host="pr-7--x.sites.troy.test")
    build = _build(scoped, preview=preview, from_fork=True)
    env = services.build_environment(build)
    assert env.secrets == {}
    assert env.variables == {"PREVIEW_BANNER": "on", "SITE_TITLE": "Troy"}
    assert services.build_codebuild_environment(build).parameters == {}


def test_codebuild_environment_names_parameters_not_values(scoped, settings):
    env = services.build_codebuild_environment(_build(scoped))
    assert env.variables == {"NODE_ENV": "production", "SITE_TITLE": "Troy"}
    assert env.parameters == {
        "API_KEY": f"/troy/{scoped.id}/API_KEY",
        "PROD_TOKEN": f"/troy/{scoped.id}/PROD_TOKEN",
    }


def test_build_redactor_hides_every_secret_of_the_pipeline_whatever_its_scope(scoped):
    redact = services.build_redactor(_build(scoped, from_fork=True))
    text = f"key={SECRET} prod=prod-token-value preview=preview-token-value plain=production"
    assert redact(text) == "key=*** prod=*** preview=*** plain=production"


def test_another_pipelines_secrets_are_not_its_business(scoped):
    other = PipelineFactory(repository="")
    _set(other, "OTHER", "other-secret-value", secret=True)
    assert services.build_redactor(_build(scoped))("other-secret-value") == "other-secret-value"


def test_a_token_no_key_opens_is_reported(scoped, settings):
    settings.TROY_SECRETS_KEY = [secret_box.Fernet.generate_key().decode()]
    with pytest.raises(secret_box.SecretUnreadable):
        services.build_environment(_build(scoped))
    # Redaction cannot hide what it cannot read; it still works for the rest (none here).
    assert services.build_redactor(_build(scoped, number=2))("abc") == "abc"


@pytest.mark.parametrize(
    ("text", "values", "expected"),
    [
        ("token=abcd1234", ["abcd1234"], "token=***"),
        ("abc is short", ["abc"], "abc is short"),  # under 4 characters: left alone
        ("abcd abcdef", ["abcd", "abcdef"], "*** ***"),  # longest first: abcdef whole
        ("x" * 3, [""], "xxx"),
        ("a.b*c a_b_c", ["a.b*c"], "*** a_b_c"),  # regex characters are literal
        (
            "-----BEGIN KEY-----\r\nMIIEow\r\n-----END KEY-----",
            ["-----BEGIN KEY-----\nMIIEow\n-----END KEY-----"],
            "***\r\n***\r\n***",
        ),  # a multi-line value printed with other line ends
        ("key: MIIEow", ["-----BEGIN KEY-----\nMIIEow\n-----END KEY-----"], "key: ***"),  # one line of it
        ("nothing here", [], "nothing here"),
    ],
)
def test_redact(text, values, expected):
    assert services.redact(text, values) == expected


def test_the_deploy_check_asks_for_a_secrets_key(settings):
    from pipelines.checks import secrets_key_set

    settings.TROY_SECRETS_KEY = []
    assert [w.id for w in secrets_key_set()] == ["pipelines.W002"]
    settings.TROY_SECRETS_KEY = [secret_box.Fernet.generate_key().decode()]
    assert secrets_key_set() == []


def test_rotation_keeps_old_tokens_readable(settings):
    old, new = (secret_box.Fernet.generate_key().decode() for _ in range(2))
    settings.TROY_SECRETS_KEY = [old]
    token = secret_box.encrypt(SECRET)
    settings.TROY_SECRETS_KEY = [new, old]
    assert secret_box.decrypt(token) == SECRET
    rotated = secret_box.rotate(token)
    settings.TROY_SECRETS_KEY = [new]
    assert secret_box.decrypt(rotated) == SECRET
    with pytest.raises(secret_box.SecretUnreadable):
        secret_box.decrypt(token)
