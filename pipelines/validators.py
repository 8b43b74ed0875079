"""Validators for what users type: pipeline names, repositories, branches, paths."""

import posixpath
import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator

from deployment_service.archives import path_problem
from deployment_service.error_codes import ErrorCode
from deployment_service.github_names import repository_split
from deployment_service.integrations.local_git import is_local_source, local_source_shape_problem

# A DNS label: 1-63 of a-z, 0-9 and '-', not starting or ending with '-'.
validate_pipeline_name = RegexValidator(
    r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z",
    "A name is a DNS label: 1-63 characters of a-z, 0-9 and '-', not starting or ending with '-'.",
    code=ErrorCode.INVALID_NAME,
)


def validate_new_pipeline_name(value: str) -> None:
    """A new name (or a renamed one) may not contain `--`: it separates a preview's label from the
    pipeline's name in `{label}--{name}.{base}` (existing names keep working; a system check
    lists them)."""
    if "--" in value:
        raise ValidationError(
            "A pipeline name may not contain '--': it is reserved for preview hosts ({label}--{name}).",
            code=ErrorCode.NAME_RESERVED_SEPARATOR,
        )


_PREVIEW_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
# Labels Troy gives itself: build permalinks `b{number}` and pull request previews `pr-{number}`.
RESERVED_PREVIEW_LABEL = re.compile(r"^(?:b[0-9]+|pr-[0-9]+)\Z")


def validate_preview_label(value: str) -> None:
    """A preview label a person chooses (a release's): a DNS label (1-63 of a-z, 0-9, '-', not
    starting or ending with '-'), without '--', and not `b{number}` (the permalinks' form) nor
    `pr-{number}` (pull request previews')."""
    if not _PREVIEW_LABEL.match(value or "") or "--" in value or RESERVED_PREVIEW_LABEL.match(value):
        raise ValidationError(
            "A preview label is 1-63 characters of a-z, 0-9 and '-', not starting or ending with '-', "
            "without '--', and not b{number} (reserved for build permalinks) nor pr-{number} (reserved for "
            "pull request previews).",
            code=ErrorCode.INVALID_PREVIEW_LABEL,
        )


def validate_repository(value: str) -> None:
    """GitHub's ``owner/repo``: owner up to 39 of letters, digits and single hyphens; repo up to
    100 of letters, digits, '.', '_', '-' (but not '.' or '..'). Or, with ``TROY_LOCAL_SOURCES``
    on, ``file:///absolute/path`` of a local git repository (that it is one, with the branch, is
    checked by the service: it runs git)."""
    if is_local_source(value):
        if not settings.TROY_LOCAL_SOURCES:
            raise ValidationError(
                "Local git sources (file://) are turned off on this service (TROY_LOCAL_SOURCES).",
                code=ErrorCode.LOCAL_SOURCES_DISABLED,
            )
        problem = local_source_shape_problem(value)
        if problem:
            raise ValidationError(f"Not a local source: {problem}.", code=ErrorCode.INVALID_LOCAL_SOURCE)
        return
    if repository_split(value) is None:
        raise ValidationError(
            "A repository is 'owner/repo' as on GitHub, e.g. 'octo-org/site'.",
            code=ErrorCode.INVALID_REPOSITORY,
        )


_BRANCH_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


def validate_branch(value: str) -> None:
    """The rules of ``git check-ref-format --branch`` that matter for a name typed by a user."""
    if (
        not value
        or len(value) > 255
        or _BRANCH_FORBIDDEN.search(value)
        or value.startswith(("-", "/"))
        or value.endswith(("/", ".", ".lock"))
        or ".." in value
        or "//" in value
        or "@{" in value
        or value == "@"
        or any(part.startswith(".") for part in value.split("/"))
    ):
        raise ValidationError(f"{value!r} is not a valid branch name.", code=ErrorCode.INVALID_BRANCH)


def validate_relative_path(value: str) -> None:
    """A path inside the build's workspace: relative, forward slashes, no '..' or NUL."""
    if not value or len(value) > 255 or path_problem(value) is not None:
        raise ValidationError(
            "The output directory must be a relative path inside the repository "
            "(no leading '/', no '..', no backslashes).",
            code=ErrorCode.INVALID_OUTPUT_DIR,
        )


def normalize_relative_path(value: str) -> str:
    normalized = posixpath.normpath(value.strip())
    return "." if normalized in {"", "."} else normalized
