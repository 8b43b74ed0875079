"""The GitHub App client: app JWT, cached installation tokens, the repositories an installation
covers, ref → commit sha, the source archive of a commit (repackaged for CodeBuild), the files changed between two
commits, commit statuses and deployments (a preview's URL). Split by concern (transport, auth, installations,
repos, statuses, deployments); callers use the names exported here.

Only workers call this package: web requests never talk to GitHub. It returns plain data: it writes
no rows and stores nothing in S3 (the flows do). Every URL starts from ``settings.GITHUB_API_URL``,
so GitHub Enterprise Server works (its API is ``https://HOST/api/v3``). Tokens, the app's private
key and signed download URLs are never logged nor put into errors.
"""

from deployment_service.integrations.github.auth import (
    TokenStore,
    app_jwt,
    github_configured,
    installation_token,
    use_token_store,
)
from deployment_service.integrations.github.compare import compare_changed_files
from deployment_service.integrations.github.deployments import create_deployment, set_deployment_status
from deployment_service.integrations.github.installations import installation_repositories
from deployment_service.integrations.github.repos import SourceArchive, download_source, resolve_ref
from deployment_service.integrations.github.statuses import set_commit_status
from deployment_service.integrations.github.transport import GithubError, GithubNotConfigured, UnsafeSourceArchive

__all__ = [
    "GithubError",
    "GithubNotConfigured",
    "SourceArchive",
    "TokenStore",
    "UnsafeSourceArchive",
    "app_jwt",
    "compare_changed_files",
    "create_deployment",
    "download_source",
    "github_configured",
    "installation_repositories",
    "installation_token",
    "resolve_ref",
    "set_commit_status",
    "set_deployment_status",
    "use_token_store",
]
