"""factory_boy factories. Status is protected: factories build rows through the services or
set the column with a queryset update (test set-up only), never by assigning ``status``."""

from __future__ import annotations

from django.contrib.auth import get_user_model
import factory

from pipelines.models import Pipeline


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")


class PipelineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Pipeline

    name = factory.Sequence(lambda n: f"site-{n}")
    owner = factory.SubFactory(UserFactory)
    repository = "octo-org/site"
    branch = "main"
    build_install = "npm ci"
    build_command = "npm run build"
    build_output_dir = "dist"


def put_in_status(pipeline: Pipeline, status: str, **fields) -> Pipeline:
    """Test set-up: place a pipeline in ``status`` directly (bypassing the protected field)."""
    Pipeline.objects.filter(pk=pipeline.pk).update(status=status, **fields)
    return Pipeline.objects.get(pk=pipeline.pk)
