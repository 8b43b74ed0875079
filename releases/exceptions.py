"""Errors of the releases app. Each has a stable ``code`` that clients branch on."""

from rest_framework import status as http_status

from deployment_service.archives import (  # noqa: F401  (the archive errors live with the reader)
    ArchiveRejected,
    ArchiveTooLarge,
    CompressionRatioTooHigh,
    CorruptArchive,
    DuplicateEntry,
    EmptyArchive,
    EncryptedEntry,
    FileTooLarge,
    NotAZip,
    SymlinkEntry,
    TooManyEntries,
    UnsafePath,
)
from deployment_service.error_codes import ErrorCode
from deployment_service.exceptions import ApplicationError, Conflict, NotFound


class ReleaseNotFound(NotFound):
    code = ErrorCode.NOT_FOUND


class UploadTooLarge(ApplicationError):
    code = ErrorCode.UPLOAD_TOO_LARGE
    http_status = http_status.HTTP_413_REQUEST_ENTITY_TOO_LARGE


class ReleaseNotDeployable(Conflict):
    code = ErrorCode.RELEASE_NOT_DEPLOYABLE


class PipelineNotAcceptingReleases(Conflict):
    code = ErrorCode.PIPELINE_NOT_ACCEPTING_RELEASES
