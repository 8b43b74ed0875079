"""``troy release`` (to production or, with ``--preview``, to a preview), ``troy rollback``, ``troy promote`` and ``troy approve``: upload or redeploy, then follow the build to its end.

Exit codes: 0 only when the build is live (or, with ``--no-deploy``, the release is stored);
1 when it failed, was cancelled or superseded, or we gave up waiting; 2 on usage errors.
"""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path
import tempfile
import time

from troy_cli import resolve
from troy_cli.client import UPLOAD_TIMEOUT, ApiError, Client, Unreachable
from troy_cli.errors import EXIT_FAILED, EXIT_OK, CliError, UsageError
from troy_cli.multipart import MultipartFile
from troy_cli.output import StatusLine, UploadProgress, emit_json, human_size, note, out, parse_time, seconds_text
from troy_cli.zipping import zip_folder

BUILD_FINISHED = ("succeeded", "failed", "cancelled", "superseded")
FIRST_POLL, MAX_POLL = 0.5, 3.0  # seconds between status polls: quick at first, then gentle
MAX_POLL_FAILURES = 10  # consecutive unanswered polls before giving up (a restart, a blip)


def _poll(client: Client, path: str, failures: list[int]) -> dict | None:
    """GET ``path``; None (and a counted failure) when the server is briefly unreachable or 5xx."""
    try:
        body = client.get(path)
    except (Unreachable, ApiError) as exc:
        if isinstance(exc, ApiError) and exc.status < 500:
            raise
        failures[0] += 1
        if failures[0] >= MAX_POLL_FAILURES:
            raise
        return None
    failures[0] = 0
    return body


def follow_build(client: Client, build: dict, *, timeout: float) -> dict:
    """Poll the build until it ends, with a live status line on stderr; the final build."""
    started = time.monotonic()
    interval = FIRST_POLL
    line = StatusLine()
    failures = [0]
    try:
        while True:
            elapsed = time.monotonic() - started
            status = build.get("status", "?")
            phase = build.get("phase") or ""
            text = f"build #{build.get('number')}: {status}{f' · {phase}' if phase else ''} · {seconds_text(elapsed)}"
            if failures[0]:
                text += " (server not answering, retrying)"
            line.update(text, key=(status, phase))
            if status in BUILD_FINISHED:
                return build
            if elapsed > timeout:
                raise CliError(
                    f"gave up after {seconds_text(elapsed)}: build #{build.get('number')} is still {status}",
                    hint="it carries on in the server; `troy builds` shows how it ends",
                )
            time.sleep(interval)
            interval = min(interval * 1.5, MAX_POLL)
            build = _poll(client, f"builds/{build['id']}/", failures) or build
    except KeyboardInterrupt:
        line.finish()
        note(
            f"Stopped following; build #{build.get('number')} carries on in the server "
            "(`troy builds` shows how it ends)."
        )
        raise
    finally:
        line.finish()


def site_address(pipeline: dict) -> str:
    """The address a person can open: the local edge's when the server runs one (the dev run),
    else the site's own."""
    return pipeline.get("local_url") or pipeline.get("site_url") or f"https://{pipeline.get('domain')}/"


def time_to_live(build: dict, *, measured: float) -> float:
    """Seconds from the request to live: the server's own clock when it reports both ends (no
    poll interval in it), else the build's duration, else what this CLI measured."""
    requested, finished = parse_time(build.get("created_at")), parse_time(build.get("finished_at"))
    if requested is not None and finished is not None and finished >= requested:
        return (finished - requested).total_seconds()
    if isinstance(build.get("duration_seconds"), int | float):
        return float(build["duration_seconds"])
    return measured


def report_build(pipeline: dict, build: dict, *, json_mode: bool, took: float | None = None, site: str = "") -> int:
    """The build's end: on success its address on stdout (the only line there), the rest on
    stderr. ``took``: seconds to live, printed for a rollback; ``site``: the address to print
    (a preview's), else the pipeline's."""
    site = site or site_address(pipeline)
    succeeded = build.get("status") == "succeeded"
    if json_mode:
        answer = {"build": build, "site_url": pipeline.get("site_url") or site, "url": site, "deployed": succeeded}
        if took is not None and succeeded:
            answer["seconds_to_live"] = round(took, 3)
        emit_json(answer)
    if succeeded:
        if build.get("preview"):
            note(f"Build #{build['number']} is live on the preview.")
        elif build.get("is_rollback") or build.get("trigger") == "rollback":
            note(_rollback_text(build, took))
        else:
            stats = build.get("stats") or {}
            note(
                f"Build #{build['number']} is live: {stats.get('files_uploaded', 0)} files uploaded "
                f"({human_size(stats.get('bytes_uploaded', 0))}), {stats.get('files_unchanged', 0)} unchanged, "
                f"{stats.get('files_deleted', 0)} deleted."
            )
        if not json_mode:
            out(site)
        return EXIT_OK
    note(f"error: build #{build.get('number')} {build.get('status')}: {build.get('error') or 'no reason given'}")
    if build.get("logs_url"):
        note(f"  logs: {build['logs_url']}")
    return EXIT_FAILED


def _rollback_text(build: dict, took: float | None) -> str:
    if build.get("content_build"):
        how = "pointer only, nothing uploaded"
    else:
        stats = build.get("stats") or {}
        how = f"stored again: {stats.get('files_uploaded', 0)} files uploaded"
    when = f" in {took:.2f} s" if took is not None else ""
    return f"Build #{build['number']} is live{when}: a rollback ({how})."


def _wait_stored(client: Client, release: dict, *, timeout: float) -> dict:
    """Poll a release until a worker has stored it in the artifact bucket (or failed to)."""
    started = time.monotonic()
    interval = FIRST_POLL
    failures = [0]
    while release.get("status", "stored") == "pending":
        if time.monotonic() - started > timeout:
            raise CliError(f"gave up after {seconds_text(time.monotonic() - started)}: release still pending")
        time.sleep(interval)
        interval = min(interval * 1.5, MAX_POLL)
        release = _poll(client, f"releases/{release['id']}/", failures) or release
    if release.get("status") == "failed":
        raise CliError(f"the server could not store the release: {release.get('error') or 'no reason given'}")
    return release


def _upload(
    client: Client, pipeline: dict, zip_path: Path, *, version: str | None, deploy: bool, preview: str = ""
) -> dict:
    fields = {"deploy": "true" if deploy else "false"}
    if version:
        fields["version"] = version
    if preview:
        fields["preview"] = preview
    with MultipartFile(zip_path, fields=fields, filename=zip_path.name, progress=UploadProgress(zip_path.name)) as body:
        return client.post(
            f"pipelines/{pipeline['id']}/releases/",
            data=body,
            headers={"Content-Type": body.content_type},
            timeout=UPLOAD_TIMEOUT,
        )


def release(args: Namespace, client: Client) -> int:
    path = Path(args.path)
    if not path.exists():
        raise UsageError(f"{path} does not exist")
    if path.is_file() and path.suffix.lower() != ".zip":
        raise UsageError(f"{path} is neither a folder nor a .zip file")
    preview_label = (getattr(args, "preview", None) or "").strip().lower()
    if preview_label and args.no_deploy:
        raise UsageError("--preview deploys to a preview; it cannot go with --no-deploy")
    pipeline = resolve.pipeline(client, args.pipeline)

    with tempfile.TemporaryDirectory(prefix="troy-release-") as scratch:
        if path.is_dir():
            zipped = zip_folder(path, Path(scratch) / f"{pipeline['name']}.zip")
            note(
                f"Zipped {zipped.file_count} files from {path} ({human_size(zipped.content_bytes)} → "
                f"{human_size(zipped.size)}, sha256 {zipped.sha256[:12]}…)"
            )
            if zipped.skipped:
                note(f"  left out: {', '.join(zipped.skipped)}")
            zip_path = zipped.path
        else:
            zip_path = path
        answer = _upload(
            client, pipeline, zip_path, version=args.version, deploy=not args.no_deploy, preview=preview_label
        )

    uploaded = answer.get("release") if isinstance(answer.get("release"), dict) else answer
    build = answer.get("build")
    note(
        f"Uploaded release {uploaded.get('version') or uploaded.get('id')} "
        f"({uploaded.get('file_count', '?')} files, sha256 {str(uploaded.get('sha256', ''))[:12]}…)"
    )

    if args.no_deploy:
        stored = _wait_stored(client, uploaded, timeout=args.timeout)
        if args.json:
            emit_json(stored)
        else:
            note(f"Stored; deploy it later with the API (POST /api/v1/releases/{stored['id']}/deploy/).")
            out(str(stored["id"]))
        return EXIT_OK

    if isinstance(build, str):
        build = client.get(f"builds/{build}/")
    if not isinstance(build, dict):
        raise CliError("the server stored the release but did not queue a build", hint="check `troy builds`")
    final = follow_build(client, build, timeout=args.timeout)
    if preview_label:
        return report_build(pipeline, final, json_mode=args.json, site=preview_address(client, pipeline, preview_label))
    return report_build(pipeline, final, json_mode=args.json)


def preview_address(client: Client, pipeline: dict, label: str) -> str:
    """The preview's address as the server shows it (the local edge's when it runs one): the host
    may be shortened, so it is never built here."""
    for preview in client.paginate(f"pipelines/{pipeline['id']}/previews/", {"page_size": 100}):
        if preview.get("label") == label:
            return preview.get("local_url") or preview.get("url") or ""
    raise CliError(f"the server shows no preview {label!r} of {pipeline['name']}", hint="check `troy previews`")


def promote(args: Namespace, client: Client) -> int:
    pipeline = resolve.pipeline(client, args.pipeline)
    label = args.label.strip().lower()
    started = time.monotonic()
    build = client.post(f"pipelines/{pipeline['id']}/previews/{label}/promote/")
    note(f"Promoting preview {label} of {pipeline['name']} as build #{build['number']} (a pointer write).")
    final = follow_build(client, build, timeout=args.timeout)
    took = time_to_live(final, measured=time.monotonic() - started)
    return report_build(pipeline, final, json_mode=args.json, took=took)


def approve(args: Namespace, client: Client) -> int:
    """``troy approve NAME LABEL``: the fork's waiting build is queued; it does not wait for it
    (a CodeBuild build takes minutes; `troy previews NAME` shows when it is live)."""
    pipeline = resolve.pipeline(client, args.pipeline)
    label = args.label.strip().lower()
    build = client.post(f"pipelines/{pipeline['id']}/previews/{label}/approve/")
    if args.json:
        emit_json(build)
        return EXIT_OK
    sha = (build.get("commit_sha") or "")[:12]
    note(
        f"Approved build #{build['number']} of {sha} for preview {label} of {pipeline['name']} (built without secrets)."
    )
    return EXIT_OK


def rollback(args: Namespace, client: Client) -> int:
    pipeline = resolve.pipeline(client, args.pipeline)
    source = resolve.build_by_number(client, pipeline, args.build_number)
    started = time.monotonic()
    build = client.post(f"builds/{source['id']}/redeploy/")
    note(f"Redeploying build #{source['number']} of {pipeline['name']} as build #{build['number']}.")
    final = follow_build(client, build, timeout=args.timeout)
    took = time_to_live(final, measured=time.monotonic() - started)
    return report_build(pipeline, final, json_mode=args.json, took=took)
