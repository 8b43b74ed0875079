"""Key names in the artifact bucket, once. Every zip Troy keeps there sits in one of three folders."""

from __future__ import annotations

RELEASES = "releases/"  # uploaded release zips, as stored from the upload spool
SOURCES = "sources/"  # Download Source: the repository at the build's commit, for CodeBuild
ARTIFACTS = "artifacts/"  # what a CodeBuild build produced: the site to deploy
# The old in-place layout's "deployed marker" (what the last deploy put live under a pipeline's
# prefix). Deploys no longer write it (a build is its manifest in the live bucket); deleting a
# pipeline still removes one an earlier deploy left.
DEPLOYED = "deployed/"
FOLDERS = (RELEASES, SOURCES, ARTIFACTS, DEPLOYED)


def release_key(release_id: object) -> str:
    return f"{RELEASES}{release_id}.zip"


def source_key(build_id: object) -> str:
    return f"{SOURCES}{build_id}.zip"


def build_artifact_key(build_id: object) -> str:
    return f"{ARTIFACTS}{build_id}.zip"


def deployed_marker_key(pipeline_id: object) -> str:
    return f"{DEPLOYED}{pipeline_id}.json"
