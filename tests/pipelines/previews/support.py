"""Set-up for the automated-preview tests: a deployed pipeline of octo-org/site with branch and
pull request previews, and preview builds moved along through the real services."""

from __future__ import annotations

from dramatiq import Message

from pipelines import services
from pipelines.choices import BuildStatus, PreviewSource
from pipelines.choices import PipelineStatus as S
from pipelines.models import Build, Pipeline
from tests.factories import PipelineFactory, put_in_status

SHA1 = "1" * 40
SHA2 = "2" * 40
SHA3 = "3" * 40


def preview_pipeline(**fields) -> Pipeline:
    fields.setdefault("preview_branches", ["feature/*", "release-*"])
    fields.setdefault("pull_request_previews", True)
    return put_in_status(PipelineFactory(repository="octo-org/site", branch="main", **fields), S.DEPLOYED)


def branch_build(pipeline: Pipeline, branch: str = "feature/login", sha: str = SHA1) -> Build:
    return services.preview_automated_request(
        pipeline_id=pipeline.id, source=PreviewSource.BRANCH, branch=branch, commit_sha=sha, actor="github:octo"
    )


def pr_build(pipeline: Pipeline, number: int = 7, sha: str = SHA1, *, fork: bool = False) -> Build:
    return services.preview_automated_request(
        pipeline_id=pipeline.id,
        source=PreviewSource.PULL_REQUEST,
        branch="topic",
        commit_sha=sha,
        pull_request=number,
        from_fork=fork,
        actor="github:octo",
    )


def start(build: Build) -> Build:
    started = services.preview_deployment_start(preview_id=build.preview_id)
    assert started is not None and started.pk == build.pk
    return Build.objects.get(pk=build.pk)


def go_live(build: Build) -> Build:
    """A running preview build whose deploy stored it (what the deploy step calls at its end)."""
    assert services.preview_deployment_finish(build_id=build.id) is not None
    return Build.objects.get(pk=build.pk)


def status_of(build: Build) -> str:
    return Build.objects.values_list("status", flat=True).get(pk=build.pk)


def sent(broker, actor: str) -> list[tuple]:
    return [
        tuple(message.args)
        for message in (Message.decode(raw) for raw in list(broker.queues["troy"].queue))
        if message.actor_name == actor
    ]


__all__ = ["BuildStatus"]
