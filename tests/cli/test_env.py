"""``troy env list|set|unset`` against the live API; a secret is never taken from argv and never
printed."""

from __future__ import annotations

import io

import pytest

from deployment_service import secret_box
from pipelines.models import Pipeline, PipelineVariable
from tests.factories import PipelineFactory, grant_repository

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "s3cr3t-from-stdin-42"


@pytest.fixture
def site(user):
    return PipelineFactory(name="site", owner=user)


@pytest.fixture
def stdin(monkeypatch):
    def feed(text: str, *, tty: bool = False):
        stream = io.StringIO(text)
        stream.isatty = lambda: tty  # type: ignore[method-assign]
        monkeypatch.setattr("sys.stdin", stream)

    return feed


def test_set_list_unset_a_plain_variable(troy, site, stdin):
    stdin("", tty=True)
    result = troy("env", "set", "site", "NODE_ENV", "production", "--scope", "production")
    assert result.code == 0, result
    assert "NODE_ENV set on site (scope production)" in result.err
    listed = troy("env", "list", "site")
    assert listed.code == 0, listed
    header, row = listed.out.splitlines()
    assert header.split()[:4] == ["NAME", "KIND", "SCOPE", "VALUE"]
    assert row.split()[:4] == ["NODE_ENV", "plain", "production", "production"]
    assert troy("env", "unset", "site", "NODE_ENV").code == 0
    assert not PipelineVariable.objects.exists()
    missing = troy("env", "unset", "site", "NODE_ENV")
    assert missing.code == 1 and "no variable NODE_ENV" in missing.err


def test_a_secret_comes_from_stdin_and_is_never_printed(troy, site, stdin):
    stdin(SECRET + "\n")
    result = troy("env", "set", "site", "API_KEY", "--secret")
    assert result.code == 0, result
    variable = PipelineVariable.objects.get(name="API_KEY")
    assert variable.secret and secret_box.decrypt(variable.value) == SECRET  # one trailing newline dropped
    listed = troy("env", "list", "site")
    assert "(hidden)" in listed.out and "pending" in listed.out
    as_json = troy("env", "list", "site", "--json")
    assert as_json.json()[0]["value"] is None
    for output in (result, listed, as_json):
        assert SECRET not in output.out + output.err


def test_a_secret_in_a_terminal_is_asked_for_without_echo(troy, site, stdin, monkeypatch):
    stdin("", tty=True)
    asked = []
    monkeypatch.setattr("getpass.getpass", lambda prompt: asked.append(prompt) or SECRET)
    result = troy("env", "set", "site", "API_KEY", "--secret", "--scope", "previews")
    assert result.code == 0, result
    assert asked == ["Value of API_KEY (not shown): "]
    assert PipelineVariable.objects.get(name="API_KEY").scope == "previews"


def test_a_secret_on_the_command_line_is_refused_before_anything_is_sent(troy, site, stdin):
    stdin("")
    result = troy("env", "set", "site", "API_KEY", SECRET, "--secret")
    assert result.code == 2
    assert "never taken from the command line" in result.err and "printf %s" in result.err
    assert SECRET not in result.err
    assert not PipelineVariable.objects.exists()


def test_an_empty_secret_is_refused(troy, site, stdin):
    stdin("")
    result = troy("env", "set", "site", "API_KEY", "--secret")
    assert result.code == 2 and "no value for secret API_KEY" in result.err


def test_the_servers_refusals_are_shown(troy, site, stdin):
    stdin("", tty=True)
    reserved = troy("env", "set", "site", "AWS_REGION", "eu-west-1")
    assert reserved.code == 1 and "reserved" in reserved.err
    assert troy("env", "list", "nope").code == 1


def test_create_with_monorepo_flags(troy, user):
    grant_repository(user, "octo-org/mono")
    result = troy(
        "pipelines",
        "create",
        "mono",
        "--repository",
        "octo-org/mono",
        "--base-dir",
        "apps/web",
        "--watch-path",
        "apps/web",
        "--watch-path",
        "packages/**",
    )
    assert result.code == 0, result
    assert "apps/web, packages/**" in result.out
    pipeline = Pipeline.objects.get(name="mono")
    assert (pipeline.base_dir, pipeline.watch_paths) == ("apps/web", ["apps/web", "packages/**"])


def test_update_changes_only_what_was_given_and_clears_watch_paths(troy, user):
    grant_repository(user, "octo-org/mono")
    PipelineFactory(name="mono", owner=user, repository="octo-org/mono", base_dir="apps/web", watch_paths=["apps/web"])
    result = troy(
        "pipelines", "update", "mono", "--base-dir", "apps/site", "--watch-path", "apps/site/**", "--test", ""
    )
    assert result.code == 0, result
    assert "Updated pipeline mono." in result.err
    pipeline = Pipeline.objects.get(name="mono")
    assert (pipeline.base_dir, pipeline.watch_paths, pipeline.build_test) == ("apps/site", ["apps/site/**"], "")
    assert pipeline.repository == "octo-org/mono"  # not given, not changed
    cleared = troy("pipelines", "update", "mono", "--no-watch-paths", "--no-auto-deploy")
    assert cleared.code == 0, cleared
    pipeline.refresh_from_db()
    assert (pipeline.watch_paths, pipeline.auto_deploy) == ([], False)


def test_update_refuses_nothing_and_bad_values_and_changes_nothing(troy, user):
    PipelineFactory(name="mono", owner=user, base_dir="apps/web")
    nothing = troy("pipelines", "update", "mono")
    assert nothing.code == 2 and "nothing to change" in nothing.err
    bad = troy("pipelines", "update", "mono", "--base-dir", "../outside", "--branch", "next")
    assert bad.code == 1 and "base_dir" in bad.err, bad
    pipeline = Pipeline.objects.get(name="mono")
    assert (pipeline.base_dir, pipeline.branch) == ("apps/web", "main")
