"""``troy previews``: a pipeline's previews (label, source, build, address, created, last
deployed, approval and closing), and ``troy previews password NAME LABEL`` (a preview's visitor
password, write-only)."""

from __future__ import annotations

from argparse import Namespace
import getpass
import sys

from troy_cli import resolve
from troy_cli.client import Client
from troy_cli.errors import EXIT_OK, UsageError
from troy_cli.output import emit_json, local_time, note, out, table


def _interactive() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


PREVIEW_COLUMNS = [
    ("label", "label"),
    ("from", "source"),
    ("build", "build"),
    ("address", "url"),
    ("created", "created"),
    ("deployed", "last deployed"),
    ("state", "state"),
]


def _preview_source(preview: dict) -> str:
    if preview.get("source") == "pr":
        return f"pull request #{preview.get('pull_request')}"
    if preview.get("source") == "branch":
        return f"branch {preview.get('branch')}"
    return "release"


def _preview_state(preview: dict) -> str:
    if preview.get("awaiting_approval"):
        return "awaiting approval (troy approve)"
    if preview.get("removal_at"):
        return f"closed, removed {local_time(preview['removal_at'])}"
    return "-"


def previews(args: Namespace, client: Client) -> int:
    more = getattr(args, "more", None) or []
    if more or (args.pipeline == "password" and (args.clear or args.username is not None)):
        if args.pipeline != "password" or len(more) != 2:
            raise UsageError("usage: troy previews NAME, or troy previews password NAME LABEL [--clear]")
        return preview_password(
            client, name=more[0], label=more[1], clear=args.clear, username=args.username, as_json=args.json
        )
    pipeline = resolve.pipeline(client, args.pipeline)
    found = list(client.paginate(f"pipelines/{pipeline['id']}/previews/", {"page_size": 100}))
    if args.json:
        emit_json(found)
        return EXIT_OK
    if not found:
        note(f"{pipeline['name']} has no previews yet (`troy release {pipeline['name']} DIR --preview LABEL`).")
        return EXIT_OK
    rows = [
        {
            **p,
            "from": _preview_source(p),
            "build": f"#{p['build_number']}" if p.get("build_number") else "-",
            "address": p.get("local_url") or p.get("url"),
            "created": local_time(p.get("created_at")) if p.get("created_at") else "-",
            "deployed": local_time(p.get("last_deployed_at")) if p.get("last_deployed_at") else "-",
            "state": _preview_state(p),
        }
        for p in found
    ]
    out(table(rows, PREVIEW_COLUMNS))
    return EXIT_OK


def _read_password() -> str:
    """From the terminal (asked twice, not echoed), else the first line of stdin."""
    if _interactive():
        password = getpass.getpass("Visitor password: ")
        if getpass.getpass("Again: ") != password:
            raise UsageError("the two passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise UsageError("no password given (type one, or pipe it on stdin)")
    return password


def preview_password(
    client: Client, *, name: str, label: str, clear: bool, username: str | None, as_json: bool = False
) -> int:
    """`troy previews password NAME LABEL [--username U] [--clear]`: set or remove a preview's
    visitor password (write-only: the server stores a hash and never shows it)."""
    pipeline = resolve.pipeline(client, name)
    path = f"pipelines/{pipeline['id']}/previews/{label}/password/"
    if clear:
        preview = client.delete(path)
    else:
        body = {"password": _read_password()}
        if username:
            body["username"] = username
        preview = client.request("PUT", path, json=body)
    if as_json:
        emit_json(preview)
        return EXIT_OK
    url = (preview or {}).get("url", label)
    if clear:
        note(f"Preview {label} of {pipeline['name']} no longer asks for a password ({url}).")
    else:
        who = f"username {username}" if username else "any username"
        note(f"Preview {label} of {pipeline['name']} now asks visitors for a password ({who}): {url}")
    return EXIT_OK
