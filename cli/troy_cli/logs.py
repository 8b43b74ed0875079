"""``troy logs NAME [BUILD] [--follow]``: a build's log (by default the pipeline's newest build).

Without ``--follow`` it prints what is stored now. With it, it keeps asking for what follows the
last offset until the server says the log is complete, then waits for the build to end and exits
with its outcome: 0 when it succeeded, 1 otherwise (the build's error is printed on stderr).
"""

from __future__ import annotations

from argparse import Namespace
import sys
import time

from troy_cli import resolve
from troy_cli.client import Client
from troy_cli.errors import EXIT_FAILED, EXIT_OK, CliError
from troy_cli.output import emit_json, emit_json_line, note

NEXT_OFFSET = "X-Troy-Log-Next-Offset"
COMPLETE = "X-Troy-Log-Complete"
UNFINISHED = ("queued", "running")


def add_parser(sub, command, common) -> None:
    p = command(sub, "logs", logs, "print a build's log; --follow streams it until the build ends")
    p.add_argument("pipeline", help="name or id")
    p.add_argument("build", nargs="?", help="the build's number (see `troy builds`) or id; default the newest")
    p.add_argument(
        "--follow", "-f", action="store_true", help="keep printing until the build ends; exit 0 only if it succeeded"
    )
    p.add_argument("--interval", type=float, default=2.0, help="seconds between polls with --follow (default 2)")


def _build(client: Client, pipeline: dict, which: str | None) -> dict:
    if which is None:
        page = client.get(f"pipelines/{pipeline['id']}/builds/", params={"page_size": 1})
        newest = (page or {}).get("results") or []
        if not newest:
            raise CliError(f"{pipeline['name']} has no builds yet", hint=f"`troy pipelines show {pipeline['name']}`")
        return newest[0]
    if resolve.looks_like_id(which):
        return client.get(f"builds/{which}/")
    try:
        number = int(which.lstrip("#"))
    except ValueError:
        raise CliError(f"{which!r} is not a build number or id", hint=f"`troy builds {pipeline['name']}`") from None
    return resolve.build_by_number(client, pipeline, number)


def _read(client: Client, build_id: str, offset: int) -> tuple[str, int, bool]:
    text, headers = client.get_text(f"builds/{build_id}/logs/", params={"offset": offset})
    try:
        next_offset = int(headers.get(NEXT_OFFSET, ""))
    except ValueError:
        raise CliError(f"the server answered no {NEXT_OFFSET} header (is it an older Troy?)") from None
    return text, next_offset, headers.get(COMPLETE, "").lower() == "true"


def logs(args: Namespace, client: Client) -> int:
    pipeline = resolve.pipeline(client, args.pipeline)
    build = _build(client, pipeline, args.build)
    as_json = getattr(args, "json", False)

    def show(text: str) -> None:
        if as_json:
            emit_json_line({"text": text})
        else:
            sys.stdout.write(text)
            sys.stdout.flush()

    if args.follow and not as_json:
        note(f"(following {pipeline['name']} #{build['number']}; Ctrl-C to stop)")
    offset, parts = 0, []
    while True:
        text, offset, complete = _read(client, build["id"], offset)
        if text:
            if args.follow:
                show(text)
            else:
                parts.append(text)
            continue  # there may be more at once (an answer is bounded)
        if complete or not args.follow:
            break
        time.sleep(args.interval)

    if not args.follow:
        if as_json:
            emit_json({"build": build, "log": "".join(parts), "complete": complete, "next_offset": offset})
        else:
            show("".join(parts))
        return EXIT_OK

    while build.get("status") in UNFINISHED:  # the log is in; the deploy step may still run
        time.sleep(args.interval)
        build = client.get(f"builds/{build['id']}/")
    if as_json:
        emit_json_line({"build": build})
    succeeded = build.get("status") == "succeeded"
    if not as_json:
        outcome = f"Build #{build['number']} of {pipeline['name']} {build.get('status')}"
        note(outcome + "." if succeeded or not build.get("error") else f"{outcome}: {build['error']}")
    return EXIT_OK if succeeded else EXIT_FAILED
