"""Every write to pipelines and builds. Views, admin, actors and commands call these; nothing else
calls a transition or writes a status.

Each status change: lock the pipeline row, apply the transition, save, write the event — one
transaction — and enqueue follow-up actors on commit.

Callers outside pipelines/services import from here (``from pipelines import services`` or
``from pipelines.services import …``), never from its modules: those are how the package is split.
"""

from pipelines.services.build_logs import (  # noqa: F401
    LogSource,
    build_log_append,
    build_log_copy_record,
    build_log_error_add_tail,
    build_log_finish,
    build_log_read,
    build_log_source,
    build_log_source_record,
    build_log_tail,
)
from pipelines.services.build_records import (  # noqa: F401
    SYSTEM_CODEBUILD,
    build_apply_codebuild_report,
    build_record_codebuild,
    build_record_commit,
    codebuild_outcome,
)
from pipelines.services.builds import (  # noqa: F401
    build_cancel,
    build_redeploy,
    build_request,
    deployment_fail,
    deployment_finish,
    deployment_start,
    release_builds_stored,
    release_builds_unstorable,
)
from pipelines.services.environment import (  # noqa: F401
    BuildEnvironment,
    CodebuildEnvironment,
    build_codebuild_environment,
    build_environment,
    build_redactor,
    env_name_check,
    env_scope_check,
    env_secret_mark_failed,
    env_secret_mark_synced,
    env_secret_sync_plan,
    env_unsynced_secret_names,
    env_variable_set,
    env_variable_unset,
    pipeline_secret_values,
    redact,
    ssm_parameter_name,
    ssm_pipeline_path,
)
from pipelines.services.github_records import build_record_github_deployment, pipeline_record_installation  # noqa: F401
from pipelines.services.installations import (  # noqa: F401
    installation_assign,
    installation_link,
    installation_record,
    installation_repositories_change,
)
from pipelines.services.pipelines import (  # noqa: F401
    EDITABLE_FIELDS,
    pipeline_create,
    pipeline_fail_deletion,
    pipeline_fail_provisioning,
    pipeline_finish_deletion,
    pipeline_finish_provisioning,
    pipeline_record_distribution,
    pipeline_record_edge_router,
    pipeline_request_provisioning,
    pipeline_schedule_deletion,
    pipeline_start_deletion,
    pipeline_start_provisioning,
    pipeline_update,
    pipelines_reap_stuck,
    pipelines_resend_waiting,
)
from pipelines.services.pointers import (  # noqa: F401
    pipeline_pointer_ids,
    pointer_ensure,
    pointer_mark_published,
    pointer_set,
    pointer_set_permalink,
    pointer_write,
    pointers_delete,
    pointers_resend_unpublished,
)
from pipelines.services.preview_care import (  # noqa: F401
    SYSTEM_CARE,
    previews_reap_stuck,
    previews_remove_closed,
    previews_resend_waiting,
)
from pipelines.services.preview_sources import (  # noqa: F401
    MAX_PREVIEW_BRANCH_PATTERNS,
    preview_approve,
    preview_automated_request,
    preview_branch_matches,
    preview_branches_check,
    preview_label_for_branch,
    preview_mark_closed,
    preview_reopen,
    pull_request_label,
)
from pipelines.services.previews import (  # noqa: F401
    preview_build_request,
    preview_delete,
    preview_deployment_finish,
    preview_deployment_start,
    preview_get,
    preview_label_clean,
    preview_promote,
)
from pipelines.services.pushes import (  # noqa: F401
    LOCAL_GIT_ACTOR,
    local_push_record,
    local_source_check,
    push_build_request,
)
from pipelines.services.retention import (  # noqa: F401
    build_ids_retained,
    build_ids_stored,
    builds_mark_unstored,
    deploy_in_progress,
)
from pipelines.services.transitions import (  # noqa: F401
    SYSTEM_REAPER,
    SYSTEM_WORKER,
    actor_of,
    allowed_actions,
    refuse,
)
from pipelines.services.visitor_passwords import preview_password_clear, preview_password_set  # noqa: F401
from pipelines.services.watch_paths import MAX_PATTERNS as WATCH_PATHS_MAX  # noqa: F401
from pipelines.services.watch_paths import (  # noqa: F401
    PUSH_SKIPPED,
    WatchDecision,
    push_skipped_record,
    watch_paths_check,
    watch_paths_decide,
)
