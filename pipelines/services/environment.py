"""A pipeline's build environment: plain variables and secrets, each scoped to production builds,
preview builds or both.

Writes (``env_variable_set`` / ``env_variable_unset``) lock the pipeline row, write the variable
and an event (status unchanged, never a value), and on commit send ``sync_pipeline_secret`` when
the SSM Parameter Store copy must change: web requests never call AWS.

Reads for a build: ``build_environment`` (the values, secrets decrypted: the local builder and
the log redactor), ``build_codebuild_environment`` (plain values and SSM parameter *names*: what
the buildspec carries for CodeBuild; no secret is decrypted for it). A fork pull request's build
(``Build.from_fork``) gets no secrets at all.

Redaction (``redact``): every secret value of the pipeline of at least ``REDACT_MIN_LENGTH``
characters, and each line of a multi-line one, is replaced by ``***``, longest first. Limits: a
value shorter than 4 characters is left alone (it would blank ordinary words of the log); a value
the build transformed (base64, URL-quoted, reversed) is not recognised; a value cut across two
separately redacted chunks is not either, so callers redact whole lines (``redact`` itself is
line-agnostic: a value spanning ``\\n`` inside one text is found).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
import logging
import re
import uuid

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from deployment_service import secret_box
from deployment_service.transactions import send_on_commit
from pipelines.choices import EnvScope
from pipelines.choices import PipelineStatus as S
from pipelines.exceptions import (
    EnvLimitReached,
    EnvNameInvalid,
    EnvNameReserved,
    EnvScopeInvalid,
    EnvValueInvalid,
    EnvValueTooLarge,
    VariableNotFound,
)
from pipelines.models import Build, PipelineVariable
from pipelines.services.transitions import lock_pipeline, note_record, refuse

logger = logging.getLogger(__name__)

NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
NAME_MAX_LENGTH = 128
RESERVED_PREFIXES = ("AWS_", "CODEBUILD_", "TROY_")
# Names the shell, CodeBuild's image or Troy's buildspec (and the local builder) rely on: set by a
# user they would break the build in ways its log does not explain.
RESERVED_NAMES = frozenset(
    {
        "PATH",
        "HOME",
        "SHELL",
        "PWD",
        "OLDPWD",
        "USER",
        "HOSTNAME",
        "IFS",
        "SHLVL",
        "ENV",
        "BASH_ENV",
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "TMPDIR",
        "TERM",
    }
)
REDACT_MIN_LENGTH = 4
REDACTED = "***"

# Scopes each kind of build reads.
_PRODUCTION_SCOPES = (EnvScope.ALL, EnvScope.PRODUCTION)
_PREVIEW_SCOPES = (EnvScope.ALL, EnvScope.PREVIEWS)

# A pipeline on its way out keeps its variables as they are (its deletion removes the SSM copies).
_ENV_FROZEN = (S.SCHEDULED_FOR_DELETION, S.DELETING)

ENV_SET = "env_set"
ENV_UNSET = "env_unset"


# --- names and values ---------------------------------------------------------------------------


def env_name_check(name: str) -> str:
    """``name`` if it may be a variable's name; else EnvNameInvalid / EnvNameReserved."""
    if not isinstance(name, str) or len(name) > NAME_MAX_LENGTH or not NAME_PATTERN.fullmatch(name):
        raise EnvNameInvalid(
            f"{name!r} is not a variable name: use letters, digits and '_', not starting with a digit, "
            f"at most {NAME_MAX_LENGTH} characters.",
            extra={"name": str(name)[:NAME_MAX_LENGTH]},
        )
    upper = name.upper()
    if upper.startswith(RESERVED_PREFIXES) or upper in RESERVED_NAMES:
        raise EnvNameReserved(
            f"{name} is reserved (names starting with {', '.join(RESERVED_PREFIXES)} and "
            f"{', '.join(sorted(RESERVED_NAMES))} belong to CodeBuild, the shell or Troy).",
            extra={"name": name},
        )
    return name


def env_scope_check(scope: str) -> str:
    if scope not in EnvScope.values:
        raise EnvScopeInvalid(
            f"scope {scope!r} is not one of {', '.join(EnvScope.values)}.", extra={"allowed": list(EnvScope.values)}
        )
    return scope


def _value_check(value: str, *, secret: bool) -> None:
    limit = settings.TROY_ENV_MAX_VALUE_BYTES
    if len(value.encode()) > limit:
        raise EnvValueTooLarge(f"The value is longer than {limit} bytes.", extra={"limit": limit})
    if "\x00" in value:
        # An environment variable cannot hold NUL (execve ends the string there).
        raise EnvValueInvalid("The value contains a NUL character, which no environment variable can hold.")
    if secret and not value:
        raise EnvValueInvalid("A secret cannot be empty (SSM Parameter Store stores no empty value).")


def ssm_parameter_name(pipeline_id: uuid.UUID | str, name: str) -> str:
    """Where a secret's SecureString lives: ``{TROY_SSM_PREFIX}{pipeline id}/{NAME}``."""
    return f"{settings.TROY_SSM_PREFIX}{pipeline_id}/{name}"


def ssm_pipeline_path(pipeline_id: uuid.UUID | str) -> str:
    return f"{settings.TROY_SSM_PREFIX}{pipeline_id}/"


# --- writes -------------------------------------------------------------------------------------


def env_variable_set(
    *,
    pipeline_id: uuid.UUID | str,
    name: str,
    value: str | None,
    secret: bool = False,
    scope: str = EnvScope.ALL,
    actor: str,
) -> PipelineVariable:
    """Create or replace variable ``name``. A secret is stored encrypted and copied to SSM by a
    worker after commit; turning a secret into a plain variable removes its SSM copy the same way.
    ``value=None`` keeps the stored value of an existing variable of the same kind (the admin
    changing only a secret's scope). Bad input raises before anything changes. Locks the row."""
    env_name_check(name)
    env_scope_check(scope)
    if value is not None:
        _value_check(value, secret=secret)
    stored = None if value is None else secret_box.encrypt(value) if secret else value
    with transaction.atomic():
        pipeline = lock_pipeline(pipeline_id)
        if pipeline.status in _ENV_FROZEN:
            raise refuse(pipeline, "set_variable")
        variable = PipelineVariable.objects.filter(pipeline=pipeline, name=name).first()
        if variable is None:
            limit = settings.TROY_ENV_MAX_VARIABLES
            if PipelineVariable.objects.filter(pipeline=pipeline).count() >= limit:
                raise EnvLimitReached(
                    f"{pipeline.name} already has {limit} variables; unset one first.", extra={"limit": limit}
                )
            variable = PipelineVariable(pipeline=pipeline, name=name)
        was_secret = variable.pk is not None and variable.secret
        if stored is None:
            if variable.pk is None or variable.secret != secret:
                raise EnvValueInvalid(f"A value is needed to {'create' if variable.pk is None else 'convert'} {name}.")
            variable.scope = scope
            variable.set_at = timezone.now()
            variable.set_by = actor
            variable.save()
            note_record(pipeline, transition=ENV_SET, actor=actor, message=f"{name}: scope set to {scope}.")
            return variable
        variable.secret = secret
        variable.value = stored
        variable.scope = scope
        variable.set_at = timezone.now()
        variable.set_by = actor
        variable.synced_at = None
        variable.sync_error = ""
        variable.save()
        kind = "Secret" if secret else "Variable"
        note_record(pipeline, transition=ENV_SET, actor=actor, message=f"{kind} {name} set (scope {scope}).")
        if secret or was_secret:
            send_on_commit("sync_pipeline_secret", str(pipeline.id), name)
    return variable


def env_variable_unset(*, pipeline_id: uuid.UUID | str, name: str, actor: str) -> None:
    """Remove variable ``name`` (VariableNotFound when there is none); a secret's SSM copy is
    deleted by a worker after commit. Locks the pipeline row."""
    with transaction.atomic():
        pipeline = lock_pipeline(pipeline_id)
        if pipeline.status in _ENV_FROZEN:
            raise refuse(pipeline, "unset_variable")
        variable = PipelineVariable.objects.filter(pipeline=pipeline, name=name).first()
        if variable is None:
            raise VariableNotFound(f"{pipeline.name} has no variable {name}.")
        variable.delete()
        kind = "Secret" if variable.secret else "Variable"
        note_record(pipeline, transition=ENV_UNSET, actor=actor, message=f"{kind} {name} unset.")
        if variable.secret:
            send_on_commit("sync_pipeline_secret", str(pipeline.id), name)


# --- the SSM copy (for the worker's flow) -------------------------------------------------------


@dataclass(frozen=True)
class SecretSyncPlan:
    """What SSM must hold for one name: ``value`` (write it) or None (delete the parameter).
    ``token`` identifies the row's version, so a sync that raced a newer set marks nothing."""

    parameter: str
    value: str | None
    token: str = ""


def env_secret_sync_plan(*, pipeline_id: uuid.UUID | str, name: str) -> SecretSyncPlan:
    """The parameter's desired state, read from the current row (so a message handled late, or
    twice, still converges on what the row says)."""
    parameter = ssm_parameter_name(pipeline_id, name)
    variable = PipelineVariable.objects.filter(pipeline_id=pipeline_id, name=name, secret=True).first()
    if variable is None:
        return SecretSyncPlan(parameter=parameter, value=None)
    return SecretSyncPlan(parameter=parameter, value=secret_box.decrypt(variable.value), token=variable.value)


def env_secret_mark_synced(*, pipeline_id: uuid.UUID | str, name: str, token: str) -> bool:
    """SSM now holds the value of token ``token``; False when the row changed meanwhile."""
    updated = PipelineVariable.objects.filter(pipeline_id=pipeline_id, name=name, secret=True, value=token).update(
        synced_at=timezone.now(), sync_error=""
    )
    return bool(updated)


def env_secret_mark_failed(*, pipeline_id: uuid.UUID | str, name: str, error: str) -> None:
    """The copy failed for good (retries used up): shown beside the variable until the next set."""
    PipelineVariable.objects.filter(pipeline_id=pipeline_id, name=name, secret=True).update(sync_error=error[:2000])


# --- reads for a build --------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildEnvironment:
    """What a build's processes get: ``variables`` plain values, ``secrets`` decrypted values
    (empty for a fork pull request's build). Never log or store ``secrets``."""

    variables: dict[str, str]
    secrets: dict[str, str]

    def as_environ(self) -> dict[str, str]:
        """Both, as one mapping for a process environment (a secret wins a clash; names are unique
        per pipeline so there is none)."""
        return {**self.variables, **self.secrets}


@dataclass(frozen=True)
class CodebuildEnvironment:
    """For the buildspec: plain ``variables`` and ``parameters`` (NAME → SSM parameter name)."""

    variables: dict[str, str]
    parameters: dict[str, str]


def _scoped(build: Build) -> list[PipelineVariable]:
    scopes = _PRODUCTION_SCOPES if build.preview_id is None else _PREVIEW_SCOPES
    return list(PipelineVariable.objects.filter(pipeline_id=build.pipeline_id, scope__in=scopes).order_by("name"))


def build_environment(build: Build) -> BuildEnvironment:
    """The variables and decrypted secrets of ``build``'s scope (production: no preview).
    Raises secret_box.SecretUnreadable when a secret's token no configured key opens."""
    variables: dict[str, str] = {}
    secrets: dict[str, str] = {}
    for variable in _scoped(build):
        if not variable.secret:
            variables[variable.name] = variable.value
        elif not build.from_fork:
            secrets[variable.name] = secret_box.decrypt(variable.value)
    return BuildEnvironment(variables=variables, secrets=secrets)


def build_codebuild_environment(build: Build) -> CodebuildEnvironment:
    """Plain values and the SSM names of the secrets of ``build``'s scope (none for a fork's
    build). Nothing is decrypted."""
    variables: dict[str, str] = {}
    parameters: dict[str, str] = {}
    for variable in _scoped(build):
        if not variable.secret:
            variables[variable.name] = variable.value
        elif not build.from_fork:
            parameters[variable.name] = ssm_parameter_name(build.pipeline_id, variable.name)
    return CodebuildEnvironment(variables=variables, parameters=parameters)


def env_unsynced_secret_names(build: Build) -> list[str]:
    """The secrets ``build`` reads whose SSM copy does not match their row yet."""
    if build.from_fork:
        return []
    return [v.name for v in _scoped(build) if v.secret and v.synced_at is None]


# --- redaction ----------------------------------------------------------------------------------


def _redaction_pattern(values: Iterable[str]) -> re.Pattern[str] | None:
    candidates: set[str] = set()
    for value in values:
        if not value:
            continue
        candidates.add(value)
        if "\n" in value or "\r" in value:
            # A multi-line secret (a PEM key) may be printed line by line or with other line ends.
            candidates.update(line.strip() for line in value.splitlines())
    kept = sorted((c for c in candidates if len(c) >= REDACT_MIN_LENGTH), key=len, reverse=True)
    if not kept:
        return None
    # One alternation, longest first: a value containing another is replaced whole.
    return re.compile("|".join(re.escape(c) for c in kept))


def redact(text: str, values: Iterable[str]) -> str:
    """``text`` with each of ``values`` (and each line of a multi-line value) replaced by ``***``,
    longest first; values shorter than ``REDACT_MIN_LENGTH`` are left (see the module's limits)."""
    pattern = _redaction_pattern(values)
    if pattern is None:
        return text
    return pattern.sub(REDACTED, text)


def pipeline_secret_values(pipeline_id: uuid.UUID | str) -> list[str]:
    """Every readable secret value of the pipeline, whatever its scope (redaction hides them all,
    even those a build was not given). A token no key opens is skipped (and logged)."""
    values = []
    tokens = PipelineVariable.objects.filter(pipeline_id=pipeline_id, secret=True).values_list("name", "value")
    for name, token in tokens:
        try:
            values.append(secret_box.decrypt(token))
        except secret_box.SecretUnreadable:
            logger.warning("secret %s of pipeline %s cannot be decrypted; not redacted", name, pipeline_id)
    return values


def build_redactor(build: Build) -> Callable[[str], str]:
    """A function redacting the pipeline's secrets (as they are now) from text of ``build``."""
    pattern = _redaction_pattern(pipeline_secret_values(build.pipeline_id))
    if pattern is None:
        return lambda text: text
    return lambda text: pattern.sub(REDACTED, text)
