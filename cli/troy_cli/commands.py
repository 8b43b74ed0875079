"""``troy login``, ``troy pipelines …``, ``troy builds`` and ``troy events``.

Each command takes the parsed arguments and returns an exit code; it raises
:class:`~troy_cli.errors.CliError` for anything the user must be told.
"""

from __future__ import annotations

from argparse import Namespace
import getpass
import os
import sys
import time

from troy_cli import config, output, resolve
from troy_cli.client import ApiError, Client
from troy_cli.errors import EXIT_OK, CliError, ConfigError, UsageError
from troy_cli.output import emit_json, emit_json_line, local_time, note, out, table


def _interactive() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


# --- login / logout ---------------------------------------------------------------------------


def login(args: Namespace) -> int:
    saved = config.read_file()
    url = args.url or ""
    if not url:
        default = os.environ.get("TROY_URL") or saved.get("url", "")
        if not _interactive():
            if not default:
                raise ConfigError("no server URL: pass --url")
            url = default
        else:
            sys.stderr.write(f"Troy URL{f' [{default}]' if default else ''}: ")
            sys.stderr.flush()
            url = sys.stdin.readline().strip() or default
    url = config.normalize_url(url)
    token = args.token or ""
    if not token:
        if not _interactive():
            raise ConfigError("no token: pass --token (or run `troy login` in a terminal)")
        token = getpass.getpass("API token: ").strip()
    if not token:
        raise ConfigError("no token given")

    settings = config.Config(url=url, token=token)
    Client(settings).get("pipelines/", params={"page_size": 1})  # 401 → "token rejected"
    path = config.save(settings)
    for name in ("TROY_URL", "TROY_TOKEN"):
        if os.environ.get(name):
            note(f"note: {name} is set in the environment and overrides the saved value")
    if args.json:
        emit_json({"url": url, "config": str(path)})
    else:
        note(f"Logged in to {url}; settings saved in {path}")
    return EXIT_OK


def logout(args: Namespace) -> int:
    path = config.remove()
    if args.json:
        emit_json({"removed": str(path) if path else None})
    else:
        note(f"Removed {path}" if path else "Not logged in (no config file).")
    return EXIT_OK


# --- pipelines --------------------------------------------------------------------------------

PIPELINE_COLUMNS = [
    ("name", "name"),
    ("status", "status"),
    ("address", "site"),
    ("source", "source"),
    ("live", "live build"),
    ("updated", "updated"),
]


def _pipeline_row(p: dict) -> dict:
    live = p.get("live_build")
    return {
        **p,
        "source": f"{p['repository']}@{p.get('branch', '')}" if p.get("repository") else "(releases only)",
        "live": f"#{live['number']}" if isinstance(live, dict) else "",
        # Where a person can open it: the local edge's address on a dev run.
        "address": p.get("local_url") or p.get("site_url"),
        "updated": local_time(p.get("updated_at")),
    }


def show_pipeline(p: dict) -> None:
    build = p.get("build") or {}
    live = p.get("live_build")
    lines = [
        ("name", p.get("name")),
        ("id", p.get("id")),
        ("status", f"{p.get('status')} ({p.get('status_display', '')})"),
        ("site", p.get("site_url") or f"https://{p.get('domain')}/"),
        ("local", p.get("local_url")),
        ("repository", f"{p['repository']} (branch {p.get('branch')})" if p.get("repository") else "(releases only)"),
        ("install", build.get("install")),
        ("build", build.get("build")),
        ("test", build.get("test")),
        ("output dir", build.get("output_dir")),
        ("base dir", p.get("base_dir")),
        ("watch paths", ", ".join(p.get("watch_paths") or [])),
        ("auto deploy", "yes" if p.get("auto_deploy") else "no"),
        ("distribution", " ".join(x for x in (p.get("distribution_id"), p.get("distribution_domain")) if x)),
        ("live build", f"#{live['number']}" if isinstance(live, dict) else ""),
        ("last error", p.get("last_error")),
        ("you may", ", ".join(p.get("allowed_transitions") or [])),
        ("created", local_time(p.get("created_at"))),
        ("updated", local_time(p.get("updated_at"))),
    ]
    for label, value in lines:
        if value not in (None, ""):
            out(f"{label + ':':<14}{value}")


def pipelines_list(args: Namespace, client: Client) -> int:
    params = {"page_size": 100}
    if args.status:
        params["status"] = args.status
    if args.search:
        params["search"] = args.search
    pipelines = list(client.paginate("pipelines/", params))
    if args.json:
        emit_json(pipelines)
    elif pipelines:
        out(table([_pipeline_row(p) for p in pipelines], PIPELINE_COLUMNS))
    else:
        note("No pipelines yet: `troy pipelines create NAME` makes one.")
    return EXIT_OK


def _build_settings(args: Namespace) -> dict:
    """The ``build`` object of a pipeline body: the commands given on the command line."""
    given = (("install", args.install), ("build", args.build), ("test", args.test), ("output_dir", args.output_dir))
    return {key: value for key, value in given if value is not None}


def pipelines_create(args: Namespace, client: Client) -> int:
    body: dict = {"name": args.name, "auto_deploy": not args.no_auto_deploy, "provision": args.provision}
    if args.repository is not None:
        body["repository"] = args.repository
    if args.branch is not None:
        body["branch"] = args.branch
    if build := _build_settings(args):
        body["build"] = build
    if args.base_dir is not None:
        body["base_dir"] = args.base_dir
    if args.watch_paths:
        body["watch_paths"] = args.watch_paths
    pipeline = client.post("pipelines/", json=body)
    if args.json:
        emit_json(pipeline)
    else:
        note(f"Created pipeline {pipeline['name']}.")
        show_pipeline(pipeline)
        if args.provision:
            note(f"Provisioning requested: `troy events {pipeline['name']} --follow` shows its progress.")
    return EXIT_OK


def pipelines_update(args: Namespace, client: Client) -> int:
    """PATCH only what was given; the server validates (a bad value changes nothing)."""
    pipeline = resolve.pipeline(client, args.pipeline)
    body: dict = {
        key: value
        for key, value in (
            ("name", args.new_name),
            ("repository", args.repository),
            ("branch", args.branch),
            ("auto_deploy", args.auto_deploy),
            ("base_dir", args.base_dir),
        )
        if value is not None
    }
    if build := _build_settings(args):
        body["build"] = build
    if args.watch_paths:
        body["watch_paths"] = args.watch_paths
    elif args.no_watch_paths:
        body["watch_paths"] = []
    if not body:
        raise UsageError("nothing to change: give at least one option (see `troy pipelines update --help`)")
    pipeline = client.patch(f"pipelines/{pipeline['id']}/", json=body)
    if args.json:
        emit_json(pipeline)
    else:
        note(f"Updated pipeline {pipeline['name']}.")
        show_pipeline(pipeline)
    return EXIT_OK


def pipelines_show(args: Namespace, client: Client) -> int:
    pipeline = resolve.pipeline(client, args.pipeline)
    if args.json:
        emit_json(pipeline)
    else:
        show_pipeline(pipeline)
    return EXIT_OK


def pipelines_provision(args: Namespace, client: Client) -> int:
    pipeline = resolve.pipeline(client, args.pipeline)
    pipeline = client.post(f"pipelines/{pipeline['id']}/provision/")
    if args.json:
        emit_json(pipeline)
    else:
        note(f"Provisioning of {pipeline['name']} requested (status {pipeline['status']}).")
    return EXIT_OK


def pipelines_delete(args: Namespace, client: Client) -> int:
    pipeline = resolve.pipeline(client, args.pipeline)
    if not args.yes:
        if not _interactive():
            raise UsageError(f"not deleting {pipeline['name']} without --yes (no terminal to ask on)")
        sys.stderr.write(f"Delete {pipeline['name']} and take {pipeline.get('site_url', 'its site')} offline? [y/N] ")
        sys.stderr.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            note("Nothing deleted.")
            return EXIT_OK
    answer = client.delete(f"pipelines/{pipeline['id']}/")
    if args.json:
        emit_json(answer)
    else:
        note(
            f"Deletion of {pipeline['name']} scheduled (status {(answer or {}).get('status', '?')}); "
            f"`troy events {pipeline['id']} --follow` shows it to the end."
        )
    return EXIT_OK


# --- builds -----------------------------------------------------------------------------------

BUILD_COLUMNS = [
    ("number", "#"),
    ("status", "status"),
    ("kind", "kind"),
    ("trigger", "trigger"),
    ("source", "ref/sha/version"),
    ("created", "created"),
    ("took", "duration"),
]


def release_versions(client: Client, pipeline: dict) -> dict[str, str]:
    """Release id → version, to show which upload a release build deployed."""
    try:
        releases = client.paginate(f"pipelines/{pipeline['id']}/releases/", {"page_size": 100})
        return {str(r["id"]): r.get("version") or str(r["id"])[:8] for r in releases}
    except ApiError as exc:
        if exc.status in (404, 405):
            return {}
        raise


def build_source(build: dict, versions: dict[str, str]) -> str:
    if build.get("kind") == "release" or build.get("release"):
        release = build.get("release")
        text = versions.get(str(release), str(release)[:8] if release else "")
        text = f"version {text}" if text else ""
    else:
        text = " ".join(x for x in (build.get("ref"), (build.get("commit_sha") or "")[:10]) if x)
    if build.get("is_rollback") or (build.get("source_build") and build.get("trigger") == "rollback"):
        text += " (rollback)"
    return text


def builds(args: Namespace, client: Client) -> int:
    pipeline = resolve.pipeline(client, args.pipeline)
    found = []
    for build in client.paginate(f"pipelines/{pipeline['id']}/builds/", {"page_size": min(args.limit, 100)}):
        found.append(build)
        if len(found) >= args.limit:
            break
    if args.json:
        emit_json(found)
        return EXIT_OK
    if not found:
        note(f"{pipeline['name']} has no builds yet.")
        return EXIT_OK
    versions = release_versions(client, pipeline) if any(b.get("release") for b in found) else {}
    rows = [
        {
            **b,
            "source": build_source(b, versions),
            "created": local_time(b.get("created_at")),
            "took": output.duration(b.get("started_at") or b.get("created_at"), b.get("finished_at")),
        }
        for b in found
    ]
    out(table(rows, BUILD_COLUMNS))
    return EXIT_OK


# --- events -----------------------------------------------------------------------------------


def event_line(event: dict) -> str:
    build = f" #{event['build_number']}" if event.get("build_number") else ""
    message = f"  {event['message']}" if event.get("message") else ""
    return (
        f"{local_time(event.get('created_at'))}  {event.get('pipeline_name')}  "
        f"{event.get('from_status')} → {event.get('to_status')}  [{event.get('transition')}{build}] "
        f"by {event.get('actor')}{message}"
    )


def _events_path(client: Client, name_or_id: str) -> tuple[str, dict]:
    """The pipeline's event list; by id it also works for a pipeline that was deleted."""
    try:
        pipeline = resolve.pipeline(client, name_or_id)
    except CliError as exc:
        if isinstance(exc, ApiError) or not resolve.looks_like_id(name_or_id):
            raise
        return "events/", {"pipeline": name_or_id}
    return f"pipelines/{pipeline['id']}/events/", {}


def events(args: Namespace, client: Client) -> int:
    path, params = _events_path(client, args.pipeline)
    newest_first: list[dict] = []
    for event in client.paginate(path, {**params, "page_size": min(args.limit, 100)}):
        newest_first.append(event)
        if len(newest_first) >= args.limit:
            break
    shown = sorted(newest_first, key=lambda e: e["id"])
    show = emit_json_line if args.follow and args.json else out
    if args.json and not args.follow:
        emit_json(shown)
    else:
        for event in shown:
            show(event if args.json else event_line(event))
    if not args.follow:
        return EXIT_OK

    last_id = max((e["id"] for e in shown), default=0)
    if any(e.get("to_status") == "deleted" for e in shown):
        return EXIT_OK
    note("(following; Ctrl-C to stop)")
    try:
        while True:
            time.sleep(args.interval)
            page = client.get(path, params={**params, "page_size": 100})
            fresh = sorted((e for e in page.get("results", []) if e["id"] > last_id), key=lambda e: e["id"])
            for event in fresh:
                show(event if args.json else event_line(event))
                last_id = event["id"]
                if event.get("to_status") == "deleted":
                    return EXIT_OK
    except KeyboardInterrupt:
        return EXIT_OK
