"""Errors of the releases app. Each has a stable ``code`` that clients branch on."""

from rest_framework import status as http_status

from deployment_service.error_codes import ErrorCode
from deployment_service.exceptions import ApplicationError, Conflict, NotFound


class ReleaseNotFound(NotFound):
    code = ErrorCode.NOT_FOUND


class UploadTooLarge(ApplicationError):
    code = ErrorCode.UPLOAD_TOO_LARGE
    http_status = http_status.HTTP_413_REQUEST_ENTITY_TOO_LARGE


class NotAZip(ApplicationError):
    code = ErrorCode.NOT_A_ZIP
    http_status = http_status.HTTP_415_UNSUPPORTED_MEDIA_TYPE


class ArchiveRejected(ApplicationError):
    """The zip is readable but unsafe or over a limit. ``entry`` names the offending entry."""

    code = ErrorCode.ARCHIVE_REJECTED
    http_status = http_status.HTTP_400_BAD_REQUEST

    def __init__(self, detail: str, *, entry: str | None = None) -> None:
        super().__init__(detail, extra={"entry": entry} if entry is not None else None)
        self.entry = entry


class CorruptArchive(ArchiveRejected):
    code = ErrorCode.CORRUPT_ARCHIVE


class UnsafePath(ArchiveRejected):
    code = ErrorCode.UNSAFE_PATH


class DuplicateEntry(ArchiveRejected):
    code = ErrorCode.DUPLICATE_ENTRY


class SymlinkEntry(ArchiveRejected):
    code = ErrorCode.SYMLINK_ENTRY


class EncryptedEntry(ArchiveRejected):
    code = ErrorCode.ENCRYPTED_ENTRY


class EmptyArchive(ArchiveRejected):
    code = ErrorCode.EMPTY_ARCHIVE


class TooManyEntries(ArchiveRejected):
    code = ErrorCode.TOO_MANY_ENTRIES


class FileTooLarge(ArchiveRejected):
    code = ErrorCode.FILE_TOO_LARGE


class ArchiveTooLarge(ArchiveRejected):
    code = ErrorCode.ARCHIVE_TOO_LARGE


class CompressionRatioTooHigh(ArchiveRejected):
    code = ErrorCode.COMPRESSION_RATIO_TOO_HIGH


class ReleaseNotDeployable(Conflict):
    code = ErrorCode.RELEASE_NOT_DEPLOYABLE


class PipelineNotAcceptingReleases(Conflict):
    code = ErrorCode.PIPELINE_NOT_ACCEPTING_RELEASES
