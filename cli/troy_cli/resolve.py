"""Pipelines are named by name or id everywhere in the CLI."""

from __future__ import annotations

import uuid

from troy_cli.client import ApiError, Client
from troy_cli.errors import CliError


def looks_like_id(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def pipeline(client: Client, name_or_id: str) -> dict:
    """The pipeline called ``name_or_id`` (exact name) or with that id."""
    if looks_like_id(name_or_id):
        try:
            return client.get(f"pipelines/{name_or_id}/")
        except ApiError as exc:
            if exc.status != 404:
                raise
    for candidate in client.paginate("pipelines/", {"search": name_or_id, "page_size": 100}):
        if candidate.get("name") == name_or_id:
            return candidate
    raise CliError(f"no pipeline named {name_or_id!r}", hint="`troy pipelines list` shows yours")


def build_by_number(client: Client, pipeline_: dict, number: int) -> dict:
    for build in client.paginate(f"pipelines/{pipeline_['id']}/builds/", {"page_size": 100}):
        if build.get("number") == number:
            return build
    raise CliError(f"{pipeline_['name']} has no build #{number}", hint=f"`troy builds {pipeline_['name']}` lists them")
