"""Key names in the artifact bucket, once. Every zip Troy keeps there sits in one of three folders."""

from __future__ import annotations

RELEASES = "releases/"  # uploaded release zips, as stored from the upload spool
SOURCES = "sources/"  # Download Source: the repository at the build's commit, for CodeBuild
ARTIFACTS = "artifacts/"  # what a CodeBuild build produced: the site to deploy
# What the last deploy put live under a pipeline's prefix (build id, digest of its manifest): a
# deploy trusts the live manifest only when this names the live build (a bucket restored or an
# emulator restarted loses it with the files). Kept here, not under the served prefix.
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
