"""Command line: ``troy [--json] COMMAND …`` (``--json`` also works after the command).

``main(argv)`` returns the exit code and never calls ``sys.exit`` (tests call it in-process);
``run()`` is the console script.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
import sys

from troy_cli import __version__, commands, config, deploys, env, logs, previews
from troy_cli.client import Client
from troy_cli.errors import EXIT_INTERRUPTED, CliError

DEFAULT_TIMEOUT = 30 * 60


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def build_parser() -> argparse.ArgumentParser:
    # ``--json`` on every subparser with SUPPRESS as default: given after the command it is set,
    # left out it does not reset the value given before the command.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="machine-readable output on stdout (progress stays on stderr)",
    )

    parser = argparse.ArgumentParser(
        prog="troy",
        description="Deploy static sites with Troy.",
        epilog="Configuration: TROY_URL and TROY_TOKEN, or `troy login`. "
        "Exit codes: 0 ok, 1 failed, 2 usage or configuration error.",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=False,
        help="machine-readable output on stdout (progress stays on stderr)",
    )
    parser.add_argument("--version", action="version", version=f"troy {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(parent, name: str, handler: Callable, help_: str) -> argparse.ArgumentParser:
        p = parent.add_parser(name, parents=[common], help=help_, description=help_)
        p.set_defaults(handler=handler)
        return p

    p = command(sub, "login", commands.login, "verify a token and save the server URL and token")
    p.add_argument("--url", help="Troy's URL, e.g. https://troy.example.com (asked for when left out)")
    p.add_argument("--token", help="API token (asked for without echo when left out)")
    p.set_defaults(needs_client=False)
    command(sub, "logout", commands.logout, "remove the saved configuration").set_defaults(needs_client=False)

    pipelines = sub.add_parser("pipelines", parents=[common], help="list, create, show, provision, delete pipelines")
    psub = pipelines.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = command(psub, "list", commands.pipelines_list, "list your pipelines")
    p.add_argument("--status", help="only these statuses (comma-separated)")
    p.add_argument("--search", help="name or repository contains this")
    p = command(psub, "create", commands.pipelines_create, "create a pipeline (one website)")
    p.add_argument("name", help="DNS label: the site is NAME.<base domain>")
    p.add_argument(
        "--repository",
        help="GitHub owner/repo, or file:///path of a local git repository where the service allows "
        "local sources (the dev run does); leave out for a releases-only pipeline",
    )
    p.add_argument("--branch", help="branch to build (default main)")
    p.add_argument("--install", help="install command, e.g. 'npm ci'")
    p.add_argument("--build", help="build command, e.g. 'npm run build'")
    p.add_argument("--test", help="test command (no test phase when left out)")
    p.add_argument("--output-dir", help="folder the build writes the site to (default dist)")
    p.add_argument("--no-auto-deploy", action="store_true", help="do not deploy on every push")
    p.add_argument("--base-dir", help="monorepos: the folder install/build/test run in (output dir is inside it)")
    p.add_argument(
        "--watch-path",
        action="append",
        dest="watch_paths",
        metavar="PATTERN",
        help="monorepos: build only pushes changing a matching file (repeatable; see docs/github.md)",
    )
    p.add_argument("--provision", action="store_true", help="create its DNS record and CloudFront distribution now")
    p = command(psub, "update", commands.pipelines_update, "change a pipeline's repository, branch or build settings")
    p.add_argument("pipeline", help="name or id")
    p.add_argument("--name", dest="new_name", help="a new name (the site moves to NEW.<base domain>)")
    p.add_argument("--repository", help="GitHub owner/repo")
    p.add_argument("--branch", help="branch to build")
    p.add_argument("--install", help="install command ('' for none)")
    p.add_argument("--build", help="build command")
    p.add_argument("--test", help="test command ('' for no test phase)")
    p.add_argument("--output-dir", help="folder the build writes the site to")
    deploys_on_push = p.add_mutually_exclusive_group()
    deploys_on_push.add_argument("--auto-deploy", action="store_true", default=None, help="deploy on every push")
    deploys_on_push.add_argument(
        "--no-auto-deploy", dest="auto_deploy", action="store_false", help="do not deploy on pushes"
    )
    p.add_argument("--base-dir", help="monorepos: the folder install/build/test run in ('' for the root)")
    watched = p.add_mutually_exclusive_group()
    watched.add_argument(
        "--watch-path",
        action="append",
        dest="watch_paths",
        metavar="PATTERN",
        help="monorepos: build only pushes changing a matching file (repeatable; replaces the list)",
    )
    watched.add_argument("--no-watch-paths", action="store_true", help="build on every push again")
    for name, handler, help_ in (
        ("show", commands.pipelines_show, "show a pipeline"),
        ("provision", commands.pipelines_provision, "request provisioning"),
        ("delete", commands.pipelines_delete, "schedule a pipeline's deletion"),
    ):
        p = command(psub, name, handler, help_)
        p.add_argument("pipeline", help="name or id")
        if name == "delete":
            p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")

    p = command(sub, "release", deploys.release, "upload a site (folder or .zip) and deploy it")
    p.add_argument("pipeline", help="name or id")
    p.add_argument("path", help="a folder (zipped reproducibly) or a .zip file (uploaded as is)")
    p.add_argument("--version", dest="version", help="a label for this release, e.g. v1.4.2")
    p.add_argument("--no-deploy", action="store_true", help="only upload and store the release")
    p.add_argument(
        "--preview", metavar="LABEL", help="deploy to the preview LABEL ({label}--{name}) instead of production"
    )
    p.add_argument(
        "--timeout",
        type=_positive_int,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"stop waiting after this long (default {DEFAULT_TIMEOUT})",
    )

    p = command(sub, "builds", commands.builds, "list a pipeline's builds, newest first")
    p.add_argument("pipeline", help="name or id")
    p.add_argument("--limit", type=_positive_int, default=20, help="how many (default 20)")

    p = command(sub, "rollback", deploys.rollback, "deploy an earlier build's files again")
    p.add_argument("pipeline", help="name or id")
    p.add_argument("build_number", type=_positive_int, help="the build's number (see `troy builds`)")
    p.add_argument(
        "--timeout",
        type=_positive_int,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"stop waiting after this long (default {DEFAULT_TIMEOUT})",
    )

    p = command(sub, "promote", deploys.promote, "make a preview's build live in production (a pointer write)")
    p.add_argument("pipeline", help="name or id")
    p.add_argument("label", help="the preview's label (see `troy previews`)")
    p.add_argument(
        "--timeout",
        type=_positive_int,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"stop waiting after this long (default {DEFAULT_TIMEOUT})",
    )

    p = command(
        sub,
        "approve",
        deploys.approve,
        "build the waiting commit of a fork's pull request preview (it builds without the pipeline's secrets)",
    )
    p.add_argument("pipeline", help="name or id")
    p.add_argument("label", help="the preview's label, e.g. pr-7 (see `troy previews`)")

    p = command(
        sub,
        "previews",
        previews.previews,
        "list a pipeline's previews; `troy previews password NAME LABEL` sets a preview's visitor password",
    )
    p.add_argument("pipeline", help="name or id (or `password`, then NAME LABEL)")
    p.add_argument("more", nargs="*", metavar="NAME LABEL", help="with `password`: the pipeline and the preview")
    p.add_argument("--clear", action="store_true", help="with `password`: remove the preview's password")
    p.add_argument("--username", default=None, help="with `password`: the username to ask for (default: any)")

    env.add_parsers(sub, command, common)

    logs.add_parser(sub, command, common)

    p = command(sub, "events", commands.events, "a pipeline's event log, oldest first")
    p.add_argument("pipeline", help="name or id (an id also works after the pipeline is deleted)")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new events until Ctrl-C")
    p.add_argument("--limit", type=_positive_int, default=100, help="the latest N events (default 100)")
    p.add_argument("--interval", type=float, default=2.0, help=argparse.SUPPRESS)
    return parser


def _report(error: CliError) -> None:
    sys.stderr.write(f"error: {error.message}\n")
    if error.hint:
        sys.stderr.write(f"hint: {error.hint}\n")
    sys.stderr.flush()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error (argparse printed it)
        return exc.code if isinstance(exc.code, int) else 2
    try:
        if getattr(args, "needs_client", True):
            return args.handler(args, Client(config.load()))
        return args.handler(args)
    except CliError as error:
        _report(error)
        return error.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return EXIT_INTERRUPTED


def run() -> None:
    sys.exit(main())
