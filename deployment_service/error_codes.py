"""Every error ``code`` Troy answers with, each written once: its HTTP status(es) and meaning.

Clients branch on these strings, so they never change. An :class:`ApplicationError` subclass names
its code as an ``ErrorCode`` member (checked when the class is defined), the DRF handler and the
plain-Django views use members too, and ``tests/deployment_service/test_error_codes.py`` fails when
a code literal appears anywhere in the server code without being registered here, or when
``docs/errors.md`` disagrees with this table (regenerate it with
``python -m deployment_service.error_codes --write docs/errors.md``).

Two kinds: *body* codes are the ``code`` of an error body; *field* codes appear under
``error_codes`` of a 400 ``invalid`` body, beside the field's messages in ``errors``.
"""

from __future__ import annotations

import argparse
import enum
from pathlib import Path
import sys


class Kind(enum.StrEnum):
    BODY = "body"
    FIELD = "field"


@enum.unique
class ErrorCode(enum.StrEnum):
    """A member is its code string (``ErrorCode.NOT_FOUND == "not_found"``), so it serialises as one."""

    statuses: tuple[int, ...]
    meaning: str
    kind: Kind

    def __new__(cls, value: str, statuses: tuple[int, ...], meaning: str, kind: Kind = Kind.BODY) -> ErrorCode:
        member = str.__new__(cls, value)
        member._value_ = value
        member.statuses = statuses
        member.meaning = meaning
        member.kind = kind
        return member

    # --- generic ---------------------------------------------------------------------------------
    APPLICATION_ERROR = "application_error", (400,), "A domain error without a more specific code."
    INVALID = (
        "invalid",
        (400,),
        "The input is invalid; `errors` holds the messages and `error_codes` the codes, per field. "
        "Also the field code of a value that is malformed.",
    )
    NOT_FOUND = "not_found", (404,), "No such object or endpoint (or it is not yours)."
    CONFLICT = "conflict", (409,), "The request conflicts with the object's current state."
    INVALID_TRANSITION = (
        "invalid_transition",
        (409,),
        "Not allowed from the current status; the body has `status` and the `allowed` transitions.",
    )
    SERVER_ERROR = "server_error", (500,), "Unexpected failure on Troy's side; it has been logged."
    ERROR = "error", (400, 500), "An HTTP error that has no more specific code (fallback)."
    TOO_LARGE = "too_large", (413,), "The webhook delivery is larger than this service accepts."
    BAD_REQUEST = "bad_request", (400,), "Django refused the request before any view saw it (e.g. a bad header)."

    # --- request bodies (deployment_service/limits.py) --------------------------------------------
    BODY_TOO_LARGE = (
        "body_too_large",
        (413,),
        "The request body is over this endpoint's limit (`limit`, in bytes); nothing was read past it.",
    )
    INVALID_CONTENT_LENGTH = "invalid_content_length", (400,), "The Content-Length header is not a number."
    INVALID_JSON = (
        "invalid_json",
        (400,),
        "The body is not strict JSON: malformed, NaN, a NUL character or a lone surrogate.",
    )
    JSON_TOO_DEEP = "json_too_deep", (400,), "The JSON body nests deeper than Troy accepts."

    # --- operations ---------------------------------------------------------------------------------
    METRICS_TOKEN_INVALID = (
        "metrics_token_invalid",
        (401,),
        "`/metrics` wants `Authorization: Bearer <TROY_METRICS_TOKEN>`.",
    )

    # --- authentication and HTTP (raised by Django REST framework) -------------------------------
    NOT_AUTHENTICATED = "not_authenticated", (401,), "No credentials were sent."
    AUTHENTICATION_FAILED = "authentication_failed", (401,), "The token is wrong or inactive."
    PERMISSION_DENIED = "permission_denied", (403,), "The user may not do this."
    METHOD_NOT_ALLOWED = "method_not_allowed", (405,), "The endpoint does not take this HTTP method."
    NOT_ACCEPTABLE = "not_acceptable", (406,), "The `Accept` header asks for a format Troy does not serve."
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type", (415,), "The request body's content type is not accepted."
    THROTTLED = "throttled", (429,), "Too many requests; try again later."
    PARSE_ERROR = "parse_error", (400,), "The request body cannot be parsed (e.g. malformed JSON)."

    # --- pipelines and builds --------------------------------------------------------------------
    NAME_LOCKED = (
        "name_locked",
        (400,),
        "A pipeline's name cannot change once it has been provisioned; `status` is the pipeline's.",
    )
    NO_REPOSITORY = "no_repository", (400,), "The pipeline has no repository to build from."
    REPOSITORY_NOT_GRANTED = (
        "repository_not_granted",
        (400,),
        "The repository is not covered by a GitHub App installation linked to the pipeline's owner.",
    )
    INSTALLATION_MISSING = (
        "installation_missing",
        (409,),
        "The pipeline's owner holds no active GitHub App installation covering its repository "
        "(uninstalled, suspended or the repository removed on GitHub).",
    )
    INSTALL_STATE_INVALID = (
        "install_state_invalid",
        (400,),
        "The GitHub App setup callback's `state` is missing, forged or expired; nothing was linked.",
    )
    INSTALLATION_TAKEN = (
        "installation_taken",
        (409,),
        "The GitHub App installation is already linked to another Troy user; nothing was changed.",
    )
    INVALID_INSTALLATION = "invalid_installation", (400,), "The setup callback's `installation_id` is not a number."
    BUILD_NOT_CANCELLABLE = (
        "build_not_cancellable",
        (409,),
        "Only queued builds and running automated builds can be cancelled; `status` is the build's.",
    )
    NOTHING_TO_PROMOTE = (
        "nothing_to_promote",
        (409,),
        "The preview serves no build yet (none of its builds went live), so there is nothing to promote.",
    )
    NOTHING_TO_APPROVE = (
        "nothing_to_approve",
        (409,),
        "No build of the preview waits for approval (only a fork's pull request waits); nothing was started.",
    )
    NOTHING_TO_REDEPLOY = (
        "nothing_to_redeploy",
        (409,),
        "Only a build that went live can be deployed again; `status` is the build's.",
    )
    RULES_INVALID = (
        "rules_invalid",
        (400,),
        "The build's `_redirects`, `_headers` or `troy.json` has rules Troy cannot honour (docs/rules.md); "
        "`problems` lists each with its file, line and reason. The deploy failed and wrote nothing.",
    )
    FINGERPRINT_REUSED = (
        "fingerprint_reused",
        (400,),
        "A build's fingerprinted file (`app.3f9a1c2b.js`) has other bytes than a retained build stored "
        "under that name; `path` names it and `build_number` the build. The deploy failed and wrote nothing.",
    )

    # --- build environment (variables and secrets) ------------------------------------------------
    ENV_NAME_INVALID = (
        "env_name_invalid",
        (400,),
        "A variable name must match `[A-Za-z_][A-Za-z0-9_]*` and be at most 128 characters.",
    )
    ENV_NAME_RESERVED = (
        "env_name_reserved",
        (400,),
        "The variable name is reserved: it starts with `AWS_`, `CODEBUILD_` or `TROY_`, or is one CodeBuild "
        "or Troy's buildspec relies on (`PATH`, `HOME`, …); `name` echoes it.",
    )
    ENV_VALUE_TOO_LARGE = (
        "env_value_too_large",
        (400,),
        "The value is longer than `limit` bytes (UTF-8); SSM Parameter Store's standard tier holds 4 KB.",
    )
    ENV_VALUE_INVALID = (
        "env_value_invalid",
        (400,),
        "The value cannot be stored: a secret may not be empty, and no value may hold a NUL character.",
    )
    ENV_LIMIT_REACHED = (
        "env_limit_reached",
        (400,),
        "The pipeline already has `limit` variables; unset one first.",
    )
    ENV_SCOPE_INVALID = "env_scope_invalid", (400,), "`scope` must be `all`, `production` or `previews`."

    # --- build logs ------------------------------------------------------------------------------
    INVALID_LOG_OFFSET = (
        "invalid_log_offset",
        (400,),
        "`offset` must be a whole number from 0 to the log's `size` (what `X-Troy-Log-Next-Offset` gave).",
    )

    # --- releases (uploaded zips) ----------------------------------------------------------------
    UPLOAD_TOO_LARGE = "upload_too_large", (413,), "The upload is larger than the configured limit."
    NOT_A_ZIP = "not_a_zip", (415,), "The upload is not a zip archive."
    ARCHIVE_REJECTED = "archive_rejected", (400,), "The zip is unsafe or over a limit; `entry` names the entry."
    CORRUPT_ARCHIVE = "corrupt_archive", (400,), "An entry of the zip cannot be read."
    UNSAFE_PATH = "unsafe_path", (400,), "An entry's path is absolute, climbs out with '..' or has bad characters."
    DUPLICATE_ENTRY = "duplicate_entry", (400,), "Two entries are the same file."
    SYMLINK_ENTRY = "symlink_entry", (400,), "An entry is a symbolic link; archives may hold only files."
    ENCRYPTED_ENTRY = "encrypted_entry", (400,), "An entry is encrypted."
    EMPTY_ARCHIVE = "empty_archive", (400,), "The zip holds no files."
    TOO_MANY_ENTRIES = "too_many_entries", (400,), "The zip has more entries than allowed."
    FILE_TOO_LARGE = "file_too_large", (400,), "A file in the zip is larger than allowed."
    ARCHIVE_TOO_LARGE = "archive_too_large", (400,), "The zip's files add up to more than allowed."
    COMPRESSION_RATIO_TOO_HIGH = (
        "compression_ratio_too_high",
        (400,),
        "An entry expands far more than real sites do (a zip bomb).",
    )
    RELEASE_NOT_DEPLOYABLE = (
        "release_not_deployable",
        (409,),
        "The release could not be stored; `release_status` says why it cannot be deployed.",
    )
    PIPELINE_NOT_ACCEPTING_RELEASES = (
        "pipeline_not_accepting_releases",
        (409,),
        "The pipeline's status takes no new releases now; `status` is the pipeline's.",
    )

    # --- GitHub ----------------------------------------------------------------------------------
    GITHUB_ERROR = "github_error", (502,), "GitHub refused or failed a call; `github_status` is its HTTP status."
    GITHUB_NOT_CONFIGURED = "github_not_configured", (503,), "The GitHub App is not configured on this server."
    UNSAFE_SOURCE_ARCHIVE = "unsafe_source_archive", (422,), "The repository archive is unsafe or over a limit."

    # --- inbound hooks (SNS and GitHub webhooks) -------------------------------------------------
    INVALID_SNS_MESSAGE = "invalid_sns_message", (400,), "The SNS delivery is not a well-formed SNS message."
    UNKNOWN_TOPIC = "unknown_topic", (403,), "The SNS topic is not one this service listens to."
    STALE_SNS_MESSAGE = "stale_sns_message", (400,), "The SNS message is over an hour old or from the future."
    INVALID_SIGNING_CERT_URL = "invalid_signing_cert_url", (403,), "The SNS signing certificate URL is not AWS's."
    INVALID_CERTIFICATE = "invalid_certificate", (403,), "The SNS signing certificate is unusable or not valid now."
    CERTIFICATE_UNAVAILABLE = (
        "certificate_unavailable",
        (503,),
        "The SNS signing certificate could not be fetched; SNS will retry.",
    )
    INVALID_SIGNATURE = (
        "invalid_signature",
        (401, 403),
        "A webhook signature is missing (401) or does not match the body (403).",
    )
    WEBHOOK_NOT_CONFIGURED = "webhook_not_configured", (503,), "GitHub deliveries are refused: no webhook secret set."
    INVALID_DELIVERY = "invalid_delivery", (400,), "The GitHub delivery's headers or body are malformed."

    # --- field codes (under `error_codes` of a 400 `invalid` body) -------------------------------
    INVALID_NAME = (
        "invalid_name",
        (400,),
        "A pipeline name is a DNS label: 1-63 of a-z, 0-9 and '-', not starting or ending with '-'.",
        Kind.FIELD,
    )
    NAME_RESERVED_SEPARATOR = (
        "name_reserved_separator",
        (400,),
        "A new pipeline name may not contain '--' (it separates a preview's label from the name).",
        Kind.FIELD,
    )
    INVALID_PREVIEW_LABEL = (
        "invalid_preview_label",
        (400,),
        "A preview label is a DNS label without '--' and not b{number} (the permalinks').",
        Kind.FIELD,
    )
    INVALID_REPOSITORY = "invalid_repository", (400,), "A repository is GitHub's 'owner/repo'.", Kind.FIELD
    INVALID_BRANCH = "invalid_branch", (400,), "Not a valid git branch name.", Kind.FIELD
    LOCAL_SOURCES_DISABLED = (
        "local_sources_disabled",
        (400,),
        "A file:// repository (a local git source) is refused: this service runs without TROY_LOCAL_SOURCES.",
        Kind.FIELD,
    )
    INVALID_LOCAL_SOURCE = (
        "invalid_local_source",
        (400,),
        "The file:// repository is not an absolute path to a git repository holding the branch.",
        Kind.FIELD,
    )
    NOT_A_LIST = "not_a_list", (400,), "The field takes a JSON list (e.g. `watch_paths`).", Kind.FIELD
    INVALID_OUTPUT_DIR = (
        "invalid_output_dir",
        (400,),
        "The output directory must be a relative path inside the repository.",
        Kind.FIELD,
    )
    # Field codes of Django and Django REST framework fields that Troy's inputs use.
    REQUIRED = "required", (400,), "The field is required.", Kind.FIELD
    BLANK = "blank", (400,), "The field may not be blank.", Kind.FIELD
    NULL = "null", (400,), "The field may not be null.", Kind.FIELD
    MAX_LENGTH = "max_length", (400,), "The value is longer than allowed.", Kind.FIELD
    MIN_LENGTH = "min_length", (400,), "The value is shorter than allowed.", Kind.FIELD
    SURROGATE_CHARACTERS_NOT_ALLOWED = (
        "surrogate_characters_not_allowed",
        (400,),
        "The text holds surrogate characters.",
        Kind.FIELD,
    )
    NULL_CHARACTERS_NOT_ALLOWED = "null_characters_not_allowed", (400,), "The text holds NUL.", Kind.FIELD
    UNIQUE = "unique", (400,), "Another object already has this value (e.g. a pipeline name).", Kind.FIELD
    INVALID_CHOICE = "invalid_choice", (400,), "The value is not one of the allowed choices.", Kind.FIELD
    INVALID_LIST = "invalid_list", (400,), "A list of values was expected.", Kind.FIELD
    NO_NAME = "no_name", (400,), "The uploaded file has no name.", Kind.FIELD
    EMPTY = "empty", (400,), "The uploaded file is empty.", Kind.FIELD


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def markdown_table(kind: Kind) -> str:
    """The table ``docs/errors.md`` holds for one kind, in the registry's order."""
    lines = ["| Code | HTTP status | Meaning |", "| --- | --- | --- |"]
    for code in ErrorCode:
        if code.kind == kind:
            statuses = ", ".join(str(status) for status in code.statuses)
            lines.append(f"| `{code.value}` | {statuses} | {_escape(code.meaning)} |")
    return "\n".join(lines)


def _markers(kind: Kind) -> tuple[str, str]:
    return f"<!-- error-codes:{kind.value}:start -->", f"<!-- error-codes:{kind.value}:end -->"


def documented_table(doc: str, kind: Kind) -> str | None:
    """The table between the doc's markers for ``kind``, or None when the markers are missing."""
    start, end = _markers(kind)
    if start not in doc or end not in doc:
        return None
    return doc.split(start, 1)[1].split(end, 1)[0].strip()


def rewrite_doc(doc: str) -> str:
    for kind in Kind:
        start, end = _markers(kind)
        if documented_table(doc, kind) is None:
            raise ValueError(f"the doc lacks the markers {start} … {end}")
        before, rest = doc.split(start, 1)
        after = rest.split(end, 1)[1]
        doc = f"{before}{start}\n{markdown_table(kind)}\n{end}{after}"
    return doc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print the error-code tables, or rewrite them in a doc.")
    parser.add_argument("--write", type=Path, metavar="DOC", help="rewrite the tables between the DOC's markers")
    args = parser.parse_args(argv)
    if args.write:
        args.write.write_text(rewrite_doc(args.write.read_text()))
    else:
        for kind in Kind:
            sys.stdout.write(markdown_table(kind) + "\n\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
