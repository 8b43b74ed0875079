"""The GitHub App client against a fake GitHub over real HTTP on loopback (tests/fakes), with the
app key made here. The fake serves its API under /api/v3 like GitHub Enterprise, so nothing may
assume api.github.com."""

from __future__ import annotations

from datetime import timedelta
import io
import os
import time
import zipfile

from django.utils import timezone
import pytest

from deployment_service.integrations import github as gh
from hooks.models import GithubInstallationToken
from tests.fakes.github_server import EXECUTABLE_MODE, SYMLINK_MODE, FakeGithub, app_keypair, github_zipball

pytestmark = pytest.mark.django_db

REPO = "octo-org/site"
INSTALLATION = 12345678
SHA = "59b20b8d5c6ff8d09518454d4dd8b7b30f095ab5"
APP_ID = "4242"


@pytest.fixture
def github(settings, github_app_key):
    private, public = github_app_key
    fake = FakeGithub(app_id=APP_ID, public_key_pem=public, prefix="/api/v3")
    fake.installations[REPO] = INSTALLATION
    with fake:
        settings.GITHUB_API_URL = fake.api_url
        settings.GITHUB_APP_ID = APP_ID
        settings.GITHUB_APP_PRIVATE_KEY = private
        yield fake


SITE_FILES = {
    "index.html": b"<h1>hello</h1>",
    "package.json": b'{"name": "site"}',
    "src/app.js": b"console.log('hi')\n" * 1000,
    "scripts/build.sh": (b"#!/bin/sh\nnpm run build\n", EXECUTABLE_MODE),
}


# --- configuration and tokens ---------------------------------------------------------------------


def test_github_configured_needs_app_id_key_and_url(settings, github_app_key):
    settings.GITHUB_APP_ID, settings.GITHUB_APP_PRIVATE_KEY = "", github_app_key[0]
    assert gh.github_configured() is False
    with pytest.raises(gh.GithubNotConfigured):
        gh.installation_token(INSTALLATION)
    settings.GITHUB_APP_ID = APP_ID
    assert gh.github_configured() is True


def test_installation_token_exchange_with_a_verified_jwt_then_cached(github):
    before = time.time()
    token = gh.installation_token(INSTALLATION)

    assert len(token) > 40
    [claims] = github.jwt_claims  # the fake verified the RS256 signature with the public key
    assert claims["iss"] == APP_ID
    assert before - 61 <= claims["iat"] <= time.time() - 59
    assert claims["exp"] <= time.time() + 600
    [exchange] = github.on("api", "POST", r"/api/v3/app/installations/12345678/access_tokens$")
    assert exchange.headers["accept"] == "application/vnd.github+json"
    assert exchange.headers["x-github-api-version"] == "2022-11-28"
    assert exchange.headers["user-agent"]
    stored = GithubInstallationToken.objects.get(installation_id=INSTALLATION)
    assert stored.token == token
    assert stored.expires_at > timezone.now() + timedelta(minutes=55)

    assert gh.installation_token(INSTALLATION) == token
    assert len(github.on("api", "POST", "access_tokens")) == 1  # the second call asked nobody


def test_a_token_close_to_expiry_is_replaced(github):
    first = gh.installation_token(INSTALLATION)
    GithubInstallationToken.objects.filter(installation_id=INSTALLATION).update(
        expires_at=timezone.now() + timedelta(minutes=4)
    )

    second = gh.installation_token(INSTALLATION)

    assert second != first
    assert len(github.on("api", "POST", "access_tokens")) == 2
    assert GithubInstallationToken.objects.get(installation_id=INSTALLATION).token == second


def test_a_revoked_cached_token_is_replaced_once(github):
    github.add_commit(REPO, "main", SHA, b"zip")
    gh.installation_token(INSTALLATION)
    github.revoke_all_tokens()

    assert gh.resolve_ref(repository=REPO, ref="main", installation_id=INSTALLATION) == SHA
    assert len(github.on("api", "POST", "access_tokens")) == 2


def test_a_jwt_signed_with_another_key_is_refused_with_githubs_message(github, settings):
    settings.GITHUB_APP_PRIVATE_KEY = app_keypair()[0]

    with pytest.raises(gh.GithubError) as caught:
        gh.installation_token(INSTALLATION)

    assert caught.value.status == 401
    assert "401" in caught.value.detail and "JSON web token could not be decoded" in caught.value.detail
    assert "PRIVATE KEY" not in caught.value.detail
    assert not GithubInstallationToken.objects.exists()


def test_an_unusable_private_key_is_a_configuration_error_that_does_not_echo_it(github, settings):
    settings.GITHUB_APP_PRIVATE_KEY = "not-a-key-but-a-secret-value"
    with pytest.raises(gh.GithubNotConfigured) as caught:
        gh.installation_token(INSTALLATION)
    assert "secret-value" not in str(caught.value)


def test_installation_repositories_follows_every_page(github):
    for n in range(130):
        github.installations[f"octo-org/repo-{n:03d}"] = INSTALLATION
    github.installations["other-org/theirs"] = INSTALLATION + 1
    names = gh.installation_repositories(installation_id=INSTALLATION)
    assert len(names) == 131  # 130 + the fixture's own repository
    assert "other-org/theirs" not in names and "octo-org/repo-129" in names
    pages = [r.path for r in github.requests if "/installation/repositories" in r.path]
    assert len(pages) == 2 and pages[1].endswith("page=2")


# --- ref → sha ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("ref", ["main", "heads/main", "refs/heads/main"])
def test_resolve_ref_asks_for_the_sha(github, ref):
    github.add_commit(REPO, "main", SHA, b"zip")

    assert gh.resolve_ref(repository=REPO, ref=ref, installation_id=INSTALLATION) == SHA

    [call] = github.on("api", "GET", "/commits/")
    assert call.path.startswith("/api/v3/repos/octo-org/site/commits/")
    assert call.headers["accept"] == "application/vnd.github.sha"
    assert call.headers["authorization"].split(" ")[1] == GithubInstallationToken.objects.get().token


def test_a_full_sha_passes_through_without_a_call(github):
    assert gh.resolve_ref(repository=REPO, ref=SHA.upper(), installation_id=INSTALLATION) == SHA
    assert github.requests == []


def test_an_unknown_ref_names_githubs_status_and_message(github):
    with pytest.raises(gh.GithubError) as caught:
        gh.resolve_ref(repository=REPO, ref="nope", installation_id=INSTALLATION)
    assert caught.value.status == 422
    assert "422" in caught.value.detail and "No commit found for SHA: nope" in caught.value.detail
    token = GithubInstallationToken.objects.get().token
    assert token not in caught.value.detail


# --- Download Source -------------------------------------------------------------------------------


def _zip(dest: io.BytesIO) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(dest.getvalue()))


def test_download_source_follows_the_redirect_without_credentials_and_repackages(github, aws, settings):
    github.add_commit(REPO, "main", SHA, github_zipball(REPO, SHA, SITE_FILES))

    dest = io.BytesIO()
    source = gh.download_source(repository=REPO, ref_or_sha="main", installation_id=INSTALLATION, dest=dest)

    assert source.commit_sha == SHA and source.files == len(SITE_FILES)
    [api_call] = github.on("api", "GET", "/zipball/")
    assert api_call.path == f"/api/v3/repos/octo-org/site/zipball/{SHA}"
    assert api_call.headers["authorization"].startswith("Bearer ghs_")
    [download] = github.on("download")
    assert github.download_port != int(github.api_url.split(":")[2].split("/")[0])
    assert "authorization" not in download.headers

    archive = _zip(dest)
    assert sorted(archive.namelist()) == sorted(SITE_FILES)  # no `octo-org-site-59b20b8/` folder
    for path, value in SITE_FILES.items():
        content = value[0] if isinstance(value, tuple) else value
        assert archive.read(path) == content
    assert (archive.getinfo("scripts/build.sh").external_attr >> 16) & 0o111  # still executable


def test_download_source_of_a_sha_skips_resolving(github, aws, settings):
    github.add_commit(REPO, "main", SHA, github_zipball(REPO, SHA, {"index.html": b"x"}))
    dest = io.BytesIO()
    gh.download_source(repository=REPO, ref_or_sha=SHA, installation_id=INSTALLATION, dest=dest)
    assert github.on("api", "GET", "/commits/") == []
    assert _zip(dest).namelist() == ["index.html"]


@pytest.mark.parametrize(
    ("entry", "mode", "why"),
    [
        ("{top}link", SYMLINK_MODE, "symbolic link"),
        ("{top}../../etc/passwd", 0o100644, ".."),
        ("/etc/passwd", 0o100644, "absolute"),
        ("stray.txt", 0o100644, "top-level folder"),
    ],
)
def test_unsafe_archives_are_refused(github, aws, settings, entry, mode, why):
    top = f"octo-org-site-{SHA[:7]}/"
    archive = github_zipball(
        REPO, SHA, {"index.html": b"x"}, raw_entries={entry.format(top=top): (b"/etc/passwd", mode)}
    )
    github.add_commit(REPO, "main", SHA, archive)

    with pytest.raises(gh.GithubError) as caught:
        gh.download_source(
            repository=REPO,
            ref_or_sha="main",
            installation_id=INSTALLATION,
            dest=io.BytesIO(),
        )

    assert why in caught.value.detail


def test_a_missing_archive_is_an_error_naming_the_status(github, aws, settings):
    github.refs[(REPO, "main")] = SHA  # the ref exists, the archive does not
    with pytest.raises(gh.GithubError) as caught:
        gh.download_source(
            repository=REPO,
            ref_or_sha="main",
            installation_id=INSTALLATION,
            dest=io.BytesIO(),
        )
    assert caught.value.status == 404 and "404" in caught.value.detail


def test_an_archive_over_the_size_limit_is_refused(github, aws, settings):
    settings.TROY_ARCHIVE_MAX_TOTAL_BYTES = 1000
    github.add_commit(REPO, "main", SHA, github_zipball(REPO, SHA, {"big.bin": os.urandom(5000)}))
    with pytest.raises(gh.GithubError, match="larger than 1000 bytes"):
        gh.download_source(
            repository=REPO,
            ref_or_sha="main",
            installation_id=INSTALLATION,
            dest=io.BytesIO(),
        )


# --- commit statuses --------------------------------------------------------------------------------


def test_set_commit_status_posts_state_description_link_and_context(github):
    gh.set_commit_status(
        repository=REPO,
        sha=SHA,
        installation_id=INSTALLATION,
        state="pending",
        description="Build #3 started",
        target_url="https://troy.example/builds/3",
    )
    gh.set_commit_status(
        repository=REPO,
        sha=SHA,
        installation_id=INSTALLATION,
        state="failure",
        description="Build #3 failed: " + "x" * 300,
        target_url="https://troy.example/builds/3",
    )

    [(repo, sha, pending), (_, _, failure)] = github.statuses
    assert (repo, sha) == (REPO, SHA)
    assert pending == {
        "state": "pending",
        "description": "Build #3 started",
        "target_url": "https://troy.example/builds/3",
        "context": "troy",
    }
    assert failure["state"] == "failure"
    assert len(failure["description"]) == 140 and failure["description"].startswith("Build #3 failed: x")
    assert len(github.on("api", "POST", "access_tokens")) == 1  # one token for both


def test_set_commit_status_refuses_unknown_states(github):
    with pytest.raises(ValueError):
        gh.set_commit_status(
            repository=REPO, sha=SHA, installation_id=INSTALLATION, state="done", description="", target_url=""
        )
    assert github.statuses == []


def test_status_on_a_repository_outside_the_installation_names_githubs_answer(github):
    with pytest.raises(gh.GithubError) as caught:
        gh.set_commit_status(
            repository="octo-org/other",
            sha=SHA,
            installation_id=INSTALLATION,
            state="success",
            description="ok",
            target_url="",
        )
    assert caught.value.status == 404
    assert "POST /repos/octo-org/other/statuses/" in caught.value.detail
