from deployment_service.exceptions import ApplicationError, Conflict, InvalidInput


class PipelineNotFound(ApplicationError):
    code = "not_found"
    http_status = 404


class BuildNotFound(ApplicationError):
    code = "not_found"
    http_status = 404


class NameLocked(InvalidInput):
    code = "name_locked"


class NoRepository(InvalidInput):
    code = "no_repository"


class BuildNotCancellable(Conflict):
    code = "build_not_cancellable"


class NothingToRedeploy(Conflict):
    code = "nothing_to_redeploy"
