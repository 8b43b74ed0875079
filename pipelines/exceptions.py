from deployment_service.error_codes import ErrorCode
from deployment_service.exceptions import ApplicationError, Conflict, InvalidInput


class PipelineNotFound(ApplicationError):
    code = ErrorCode.NOT_FOUND
    http_status = 404


class BuildNotFound(ApplicationError):
    code = ErrorCode.NOT_FOUND
    http_status = 404


class PreviewNotFound(ApplicationError):
    code = ErrorCode.NOT_FOUND
    http_status = 404


class NothingToPromote(Conflict):
    code = ErrorCode.NOTHING_TO_PROMOTE


class NothingToApprove(Conflict):
    code = ErrorCode.NOTHING_TO_APPROVE


class NameLocked(InvalidInput):
    code = ErrorCode.NAME_LOCKED


class NoRepository(InvalidInput):
    code = ErrorCode.NO_REPOSITORY


class BuildNotCancellable(Conflict):
    code = ErrorCode.BUILD_NOT_CANCELLABLE


class NothingToRedeploy(Conflict):
    code = ErrorCode.NOTHING_TO_REDEPLOY


class FingerprintReused(InvalidInput):
    """The deploy step refuses a build whose fingerprinted file changed bytes under a name a
    retained build serves (browsers keep such a file as ``immutable``)."""

    code = ErrorCode.FINGERPRINT_REUSED


class RulesInvalid(InvalidInput):
    """The deploy step refuses a build whose routing rules cannot be honoured as written
    (edge/rules.py): never a build that silently drops some."""

    code = ErrorCode.RULES_INVALID


class RepositoryNotGranted(InvalidInput):
    code = ErrorCode.REPOSITORY_NOT_GRANTED


class InstallationMissing(Conflict):
    code = ErrorCode.INSTALLATION_MISSING


class InstallStateInvalid(InvalidInput):
    code = ErrorCode.INSTALL_STATE_INVALID


class InstallationTaken(Conflict):
    code = ErrorCode.INSTALLATION_TAKEN


class InvalidInstallation(InvalidInput):
    code = ErrorCode.INVALID_INSTALLATION


class VariableNotFound(ApplicationError):
    code = ErrorCode.NOT_FOUND
    http_status = 404


class EnvNameInvalid(InvalidInput):
    code = ErrorCode.ENV_NAME_INVALID


class EnvNameReserved(InvalidInput):
    code = ErrorCode.ENV_NAME_RESERVED


class EnvValueTooLarge(InvalidInput):
    code = ErrorCode.ENV_VALUE_TOO_LARGE


class EnvValueInvalid(InvalidInput):
    code = ErrorCode.ENV_VALUE_INVALID


class EnvLimitReached(InvalidInput):
    code = ErrorCode.ENV_LIMIT_REACHED


class EnvScopeInvalid(InvalidInput):
    code = ErrorCode.ENV_SCOPE_INVALID


class InvalidLogOffset(InvalidInput):
    code = ErrorCode.INVALID_LOG_OFFSET
