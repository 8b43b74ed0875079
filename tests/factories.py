"""factory_boy factories. Status is protected: factories build rows through the services or
set the column with a queryset update (test set-up only), never by assigning ``status``."""

from __future__ import annotations

from django.contrib.auth import get_user_model
import factory

from pipelines.models import GithubInstallation, Pipeline
from pipelines.services import installation_link, installation_repositories_change

# The installation the tests' GitHub pushes come from (tests/hooks/github_helpers.py sends it).
TEST_INSTALLATION = 12345678


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")


class PipelineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Pipeline
        # The grant hook writes installation rows, not the pipeline: no second save of it.
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"site-{n}")
    owner = factory.SubFactory(UserFactory)
    repository = "octo-org/site"
    branch = "main"
    build_install = "npm ci"
    build_command = "npm run build"
    build_output_dir = "dist"

    @factory.post_generation
    def grant(pipeline: Pipeline, create: bool, extracted: bool | int | None, **kwargs) -> None:
        """The owner holds an installation covering the repository (``grant=False``: none;
        ``grant=<id>``: that installation), as the API requires of a pipeline with a repository."""
        if create and pipeline.repository and extracted is not False:
            installation_id = None if extracted in (None, True) else int(extracted)
            grant_repository(pipeline.owner, pipeline.repository, installation_id=installation_id)


def put_in_status(pipeline: Pipeline, status: str, **fields) -> Pipeline:
    """Test set-up: place a pipeline in ``status`` directly (bypassing the protected field)."""
    Pipeline.objects.filter(pk=pipeline.pk).update(status=status, **fields)
    return Pipeline.objects.get(pk=pipeline.pk)


def grant_repository(user, repository: str, *, installation_id: int | None = None) -> GithubInstallation:
    """Test set-up: link an installation to ``user`` and let it cover ``repository`` (through the
    services, like the setup callback and the webhooks do). Without an id: the user's own one
    (``TEST_INSTALLATION`` for the first user to ask, a distinct id per further user)."""
    if installation_id is None:
        taken = GithubInstallation.objects.filter(installation_id=TEST_INSTALLATION).exclude(user=user).exists()
        installation_id = TEST_INSTALLATION + user.pk if taken else TEST_INSTALLATION
    installation = installation_link(installation_id=installation_id, user_id=user.pk)
    installation_repositories_change(installation_id=installation_id, added=[repository])
    return installation
