"""Errors of the releases app. Each has a stable ``code`` that clients branch on."""

from rest_framework import status as http_status

from deployment_service.exceptions import ApplicationError, Conflict, NotFound


class ReleaseNotFound(NotFound):
    code = "not_found"


class UploadTooLarge(ApplicationError):
    code = "upload_too_large"
    http_status = http_status.HTTP_413_REQUEST_ENTITY_TOO_LARGE


class NotAZip(ApplicationError):
    code = "not_a_zip"
    http_status = http_status.HTTP_415_UNSUPPORTED_MEDIA_TYPE


class ArchiveRejected(ApplicationError):
    """The zip is readable but unsafe or over a limit. ``entry`` names the offending entry."""

    code = "archive_rejected"
    http_status = http_status.HTTP_400_BAD_REQUEST

    def __init__(self, detail: str, *, entry: str | None = None) -> None:
        super().__init__(detail, extra={"entry": entry} if entry is not None else None)
        self.entry = entry


class CorruptArchive(ArchiveRejected):
    code = "corrupt_archive"


class UnsafePath(ArchiveRejected):
    code = "unsafe_path"


class DuplicateEntry(ArchiveRejected):
    code = "duplicate_entry"


class SymlinkEntry(ArchiveRejected):
    code = "symlink_entry"


class EncryptedEntry(ArchiveRejected):
    code = "encrypted_entry"


class EmptyArchive(ArchiveRejected):
    code = "empty_archive"


class TooManyEntries(ArchiveRejected):
    code = "too_many_entries"


class FileTooLarge(ArchiveRejected):
    code = "file_too_large"


class ArchiveTooLarge(ArchiveRejected):
    code = "archive_too_large"


class CompressionRatioTooHigh(ArchiveRejected):
    code = "compression_ratio_too_high"


class ReleaseNotDeployable(Conflict):
    code = "release_not_deployable"


class PipelineNotAcceptingReleases(Conflict):
    code = "pipeline_not_accepting_releases"
