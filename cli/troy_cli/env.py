"""``troy env list|set|unset``: a pipeline's build variables and secrets.

A secret is read from stdin (a pipe) or, in a terminal, asked for without echo; never from the
command line, where it would stay in the shell's history and be visible to other users in ``ps``.
"""

from __future__ import annotations

from argparse import Namespace
import getpass
import sys
from urllib.parse import quote

from troy_cli import resolve
from troy_cli.client import Client
from troy_cli.errors import EXIT_OK, UsageError
from troy_cli.output import emit_json, local_time, note, out, table

SCOPES = ("all", "production", "previews")
COLUMNS = [
    ("name", "name"),
    ("kind", "kind"),
    ("scope", "scope"),
    ("shown", "value"),
    ("set", "set"),
    ("synced", "synced"),
]


def _interactive() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def _path(pipeline: dict, name: str | None = None) -> str:
    base = f"pipelines/{pipeline['id']}/env/"
    return f"{base}{quote(name, safe='')}/" if name else base


def _row(variable: dict) -> dict:
    secret = bool(variable.get("secret"))
    synced = ""
    if secret:
        synced = local_time(variable.get("synced_at")) or ("failed" if variable.get("sync_error") else "pending")
    return {
        **variable,
        "kind": "secret" if secret else "plain",
        "shown": "(hidden)" if secret else variable.get("value", ""),
        "set": f"{local_time(variable.get('set_at'))} by {variable.get('set_by') or '?'}",
        "synced": synced,
    }


def env_list(args: Namespace, client: Client) -> int:
    pipeline = resolve.pipeline(client, args.pipeline)
    variables = client.get(_path(pipeline)) or []
    if args.json:
        emit_json(variables)
    elif variables:
        out(table([_row(v) for v in variables], COLUMNS))
        for variable in variables:
            if variable.get("sync_error"):
                note(f"{variable['name']}: {variable['sync_error']}")
    else:
        note(f"{pipeline['name']} has no variables: `troy env set {pipeline['name']} NAME VALUE` adds one.")
    return EXIT_OK


def _read_value(name: str, *, secret: bool) -> str:
    """The value from stdin: asked for without echo in a terminal, else the whole input with one
    trailing newline dropped (what ``echo`` or a file's last line adds)."""
    if _interactive():
        if not secret:
            raise UsageError(f"give {name}'s value after its name, or pipe it on stdin")
        value = getpass.getpass(f"Value of {name} (not shown): ")
    else:
        value = sys.stdin.read()
        if value.endswith("\r\n"):
            value = value[:-2]
        elif value.endswith("\n"):
            value = value[:-1]
    if secret and not value:
        raise UsageError(f"no value for secret {name}: nothing was read from stdin")
    return value


def env_set(args: Namespace, client: Client) -> int:
    if args.secret and args.value is not None:
        raise UsageError(
            "a secret is never taken from the command line (it would stay in your shell history and show in `ps`)",
            hint=f'pipe it: printf %s "$VALUE" | troy env set {args.pipeline} {args.name} --secret '
            "(or run it in a terminal to be asked for it without echo)",
        )
    pipeline = resolve.pipeline(client, args.pipeline)
    value = args.value if args.value is not None else _read_value(args.name, secret=args.secret)
    variable = client.request(
        "PUT", _path(pipeline, args.name), json={"value": value, "secret": args.secret, "scope": args.scope}
    )
    if args.json:
        emit_json(variable)
    elif variable.get("secret"):
        note(
            f"Secret {variable['name']} set on {pipeline['name']} (scope {variable['scope']}); "
            "it is never shown again. Builds started from now on get it."
        )
    else:
        note(f"{variable['name']} set on {pipeline['name']} (scope {variable['scope']}).")
    return EXIT_OK


def env_unset(args: Namespace, client: Client) -> int:
    pipeline = resolve.pipeline(client, args.pipeline)
    client.delete(_path(pipeline, args.name))
    if args.json:
        emit_json({"pipeline": pipeline["name"], "unset": args.name})
    else:
        note(f"{args.name} unset on {pipeline['name']}.")
    return EXIT_OK


def add_parsers(sub, command, common) -> None:
    """``troy env …`` on the top-level subparsers; ``command`` and ``common`` are main's."""
    parent = sub.add_parser("env", parents=[common], help="a pipeline's build variables and secrets")
    esub = parent.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = command(esub, "list", env_list, "list variables (secret values are never shown)")
    p.add_argument("pipeline", help="name or id")
    p = command(esub, "set", env_set, "set a variable; --secret reads the value from stdin or asks for it")
    p.add_argument("pipeline", help="name or id")
    p.add_argument("name", help="the variable's name, e.g. NODE_ENV")
    p.add_argument("value", nargs="?", help="a plain value (never a secret's: those come from stdin)")
    p.add_argument("--secret", action="store_true", help="write-only: stored encrypted, read by builds through SSM")
    p.add_argument("--scope", choices=SCOPES, default="all", help="which builds get it (default all)")
    p = command(esub, "unset", env_unset, "remove a variable or secret")
    p.add_argument("pipeline", help="name or id")
    p.add_argument("name", help="the variable's name")
