"""A build's routing rules: Netlify-compatible `_redirects` and `_headers`, and `troy.json`.

Parsed once at deploy time (a rule that cannot be honoured fails the build with the file, the line
and why; nothing is ever dropped), stored in the build's manifest as plain JSON (`Rules.to_dict`)
and applied per request by the origin handler, at CloudFront and on the local edge alike
(`Rules.redirect_for`, `Rules.headers_for`). Stdlib only: this module ships to Lambda@Edge.

The supported subset is documented in docs/rules.md; in short:

* `_redirects`: `from [key=value …] to [status][!]`, one rule per line, `#` comments; statuses
  200 (rewrite to a file of the build), 301/302/303/307/308 (redirect, the default 301),
  404/410/451 (serve the target with that status); `:name` placeholders (a whole segment), a
  trailing `*` splat (`:splat` in the target), `!` to apply even where a file exists. Rules are
  tried in order and the first match wins; `/a` and `/a/` match alike.
* `_headers`: a path pattern on its own line (`*` matches anything, `:name` a segment), then
  indented `Name: value` lines. Every matching block applies; for the same header a later block
  replaces an earlier one, and one block naming a header twice joins the values with `, `.
* `troy.json`: `spa`, `not_found`, `trailing_slash`, `clean_urls`, `headers`, `redirects`
  (JSON Schema: docs/troy.schema.json).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
import hashlib
import json
import re
import secrets
from typing import Any
from urllib.parse import parse_qsl, quote

RULES_VERSION = 1

# Limits (the build fails past them, saying which; rules are never dropped).
MAX_PATTERN_RULES = 2_000
MAX_EXACT_REDIRECTS = 20_000
MAX_HEADER_RULES = 1_000
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_LINE_CHARS = 4_096

REDIRECT_STATUSES = (301, 302, 303, 307, 308)
CONTENT_STATUSES = (200, 404, 410, 451)
DEFAULT_STATUS = 301
TRAILING_SLASH = ("add", "remove", "keep")

_PLACEHOLDER = re.compile(r":([A-Za-z_][A-Za-z0-9_]*)")
_SEGMENT_PLACEHOLDER = re.compile(r":[A-Za-z_][A-Za-z0-9_]*")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_CONDITION = re.compile(r"(?i)(country|language|role|cookie|header)=")
# Headers CloudFront does not let an edge function set, or that belong to the connection.
FORBIDDEN_HEADERS = frozenset(
    {
        "connection",
        "content-length",
        "content-encoding",
        "host",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "via",
        "warning",
        "x-cache",
        "x-troy-build",
    }
)
FORBIDDEN_HEADER_PREFIXES = ("x-amz-cf-", "x-edge-", "x-amzn-")
# A path safe in a URI: what is not in this set is percent-encoded when a rule is read.
_PATH_SAFE = "/:*!$&'()+,;=@~-._%"


@dataclass(frozen=True)
class RuleProblem:
    file: str
    line: int  # 0 when the problem is the file as a whole
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}" if self.line else f"{self.file}: {self.message}"


class RulesError(ValueError):
    """Rules that cannot be honoured as written. Carries every problem found, not just the first."""

    def __init__(self, problems: list[RuleProblem]) -> None:
        self.problems = sorted(problems, key=lambda problem: (problem.file, problem.line))
        shown = "; ".join(str(problem) for problem in problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        super().__init__(shown + more)


# --- path patterns ------------------------------------------------------------------------------


def _normalize(path: str) -> str:
    """How request paths and rule paths are compared: without a trailing slash (but `/` stays)."""
    return path.rstrip("/") or "/"


def _encode(path: str) -> str:
    return quote(path, safe=_PATH_SAFE)


@dataclass(frozen=True)
class Pattern:
    """A compiled `from` path: exact, or with `:name` segments and a trailing `*` splat."""

    source: str
    regex: re.Pattern[str] | None
    names: tuple[str, ...]
    first_segment: str  # literal first segment, "" when it is a placeholder or splat

    @property
    def exact(self) -> bool:
        return self.regex is None

    def match(self, path: str) -> dict[str, str] | None:
        if self.regex is None:
            return {} if _normalize(path) == self.source else None
        found = self.regex.fullmatch(_normalize(path))
        if found is None:
            return None
        return {name: value or "" for name, value in zip(self.names, found.groups(), strict=True)}


def compile_redirect_path(path: str) -> Pattern:
    """`/a/:b/*` → a pattern; raises ValueError naming what is wrong."""
    if not path.startswith("/"):
        raise ValueError(f"{path!r} must start with /")
    if "?" in path or "#" in path:
        raise ValueError(
            f"{path!r}: write query conditions as key=value after the path; fragments never reach a server"
        )
    path = _normalize(_encode(path))
    segments = path.split("/")[1:] if path != "/" else []
    if "*" not in path and not _SEGMENT_PLACEHOLDER.search(path):
        return Pattern(source=path, regex=None, names=(), first_segment=segments[0] if segments else "")
    parts: list[str] = []
    names: list[str] = []
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if "*" in segment:
            if not (last and segment.endswith("*") and segment.count("*") == 1):
                raise ValueError(f"{path!r}: a splat (*) may only end the path")
            if segment == "*":
                # `/a/*` matches `/a` too (and `/*` the root), as on Netlify.
                parts.append("(?:/(.*))?")
            else:
                parts.append("/" + re.escape(segment[:-1]) + "(.*)")
            names.append("splat")
            continue
        if _SEGMENT_PLACEHOLDER.fullmatch(segment):
            name = segment[1:]
            if name in names:
                raise ValueError(f"{path!r}: placeholder :{name} appears twice")
            names.append(name)
            parts.append("/([^/]+)")
        elif _SEGMENT_PLACEHOLDER.search(segment):
            raise ValueError(f"{path!r}: a placeholder must be a whole segment ({segment!r})")
        else:
            parts.append("/" + re.escape(segment))
    regex = "".join(parts)
    if regex == "(?:/(.*))?":  # `/*`: every path, the root included
        regex = "/(.*)"
    head = segments[0] if segments else ""
    first = head if "*" not in head and not _SEGMENT_PLACEHOLDER.fullmatch(head) else ""
    return Pattern(source=path, regex=re.compile(regex), names=tuple(names), first_segment=first)


def compile_header_path(path: str) -> re.Pattern[str]:
    """A `_headers` path: `*` matches anything (slashes too), `:name` one segment."""
    if not path.startswith("/"):
        raise ValueError(f"{path!r} must start with / (absolute URLs are not supported)")
    out = []
    for piece in re.split(r"(\*|:[A-Za-z_][A-Za-z0-9_]*)", _encode(path)):
        if piece == "*":
            out.append(".*")
        elif piece.startswith(":") and _SEGMENT_PLACEHOLDER.fullmatch(piece):
            out.append("[^/]+")
        else:
            out.append(re.escape(piece))
    return re.compile("".join(out))


# --- redirects ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Redirect:
    source: str  # "_redirects:12" or "troy.json redirects[3]"
    from_path: str
    to: str
    status: int
    force: bool = False
    query: tuple[tuple[str, str], ...] = ()  # (name, ":placeholder" or literal value)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"from": self.from_path, "to": self.to, "status": self.status, "at": self.source}
        if self.force:
            data["force"] = True
        if self.query:
            data["query"] = [list(pair) for pair in self.query]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Redirect:
        return cls(
            source=data.get("at", ""),
            from_path=data["from"],
            to=data["to"],
            status=int(data["status"]),
            force=bool(data.get("force", False)),
            query=tuple((str(name), str(value)) for name, value in data.get("query", [])),
        )


def _check_redirect(rule: Redirect) -> Pattern:
    """Validate one rule; returns its compiled `from`. Raises ValueError with the reason."""
    pattern = compile_redirect_path(rule.from_path)
    status = rule.status
    if status not in REDIRECT_STATUSES + CONTENT_STATUSES:
        raise ValueError(f"status {status} is not supported (use 200, 301, 302, 303, 307, 308, 404, 410 or 451)")
    external = re.match(r"(?i)https?://", rule.to) is not None
    if status in CONTENT_STATUSES:
        if external:
            raise ValueError(
                f"status {status} with an external target would proxy another site, which a static host cannot do"
                " (redirect with 301/302 instead)"
            )
        if not rule.to.startswith("/"):
            raise ValueError(f"target {rule.to!r} must be a path of the build starting with /")
    elif not (external or rule.to.startswith("/")):
        raise ValueError(f"target {rule.to!r} must start with / or http(s)://")
    if any(c in rule.to for c in " \t\r\n"):
        raise ValueError(f"target {rule.to!r} contains whitespace")
    defined = set(pattern.names) | {value[1:] for _, value in rule.query if value.startswith(":")}
    if "splat" not in defined and ":splat" in rule.to:
        raise ValueError(f"target uses :splat but {rule.from_path!r} has no *")
    return pattern


def parse_redirects(text: str, *, file: str = "_redirects") -> list[Redirect]:
    """Every rule of a `_redirects` file, in order; RulesError with every problem otherwise."""
    problems: list[RuleProblem] = []
    rules: list[Redirect] = []
    if len(text.encode("utf-8")) > MAX_FILE_BYTES:
        raise RulesError([RuleProblem(file, 0, f"is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")])
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if len(line) > MAX_LINE_CHARS:
            problems.append(RuleProblem(file, number, f"line longer than {MAX_LINE_CHARS} characters"))
            continue
        tokens = line.split()
        try:
            rule = _redirect_from_tokens(tokens, source=f"{file}:{number}")
            _check_redirect(rule)
        except ValueError as exc:
            problems.append(RuleProblem(file, number, str(exc)))
            continue
        rules.append(rule)
    if problems:
        raise RulesError(problems)
    return rules


def _redirect_from_tokens(tokens: list[str], *, source: str) -> Redirect:
    if len(tokens) < 2:
        raise ValueError("a rule needs a path and a target (from to [status])")
    from_path, rest = tokens[0], tokens[1:]
    query: list[tuple[str, str]] = []
    while rest and "=" in rest[0] and not rest[0].startswith("/") and not re.match(r"(?i)https?://", rest[0]):
        name, _, value = rest.pop(0).partition("=")
        if not name:
            raise ValueError(f"query condition {name}={value} has no name")
        query.append((name, value))
    if not rest:
        raise ValueError("a rule needs a target after its path")
    to, rest = rest[0], rest[1:]
    status, force = DEFAULT_STATUS, False
    if rest:
        token = rest.pop(0)
        force = token.endswith("!")
        digits = token.rstrip("!")
        if not digits.isdigit():
            raise ValueError(f"{token!r} is not a status (a number, optionally followed by !)")
        status = int(digits)
    if rest:
        if any(_CONDITION.match(token) for token in rest):
            raise ValueError(
                f"conditions ({' '.join(rest)}) are not supported: country, language, role and cookie rules"
            )
        raise ValueError(f"unexpected {' '.join(rest)!r} after the status")
    return Redirect(source=source, from_path=from_path, to=to, status=status, force=force, query=tuple(query))


# --- headers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HeaderRule:
    source: str
    path: str
    values: tuple[tuple[str, str], ...]  # (name as written, value), one block's order

    def to_dict(self) -> dict[str, Any]:
        return {"for": self.path, "values": [list(pair) for pair in self.values], "at": self.source}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HeaderRule:
        return cls(
            source=data.get("at", ""),
            path=data["for"],
            values=tuple((str(name), str(value)) for name, value in data["values"]),
        )


def _check_header(name: str, value: str) -> None:
    if not _HEADER_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a header name")
    lowered = name.lower()
    if lowered == "basic-auth":
        # Netlify reads this as a password rule; as a header it would send the password to every
        # visitor. Refused rather than served.
        raise ValueError(
            "Basic-Auth is a Netlify password rule, not a header; Troy protects a whole site only: "
            'write "basic_auth" in troy.json (path-scoped passwords are not supported)'
        )
    if lowered in FORBIDDEN_HEADERS or lowered.startswith(FORBIDDEN_HEADER_PREFIXES):
        raise ValueError(f"header {name} cannot be set by a site (CloudFront or the connection owns it)")
    if any(c in value for c in "\r\n\0"):
        raise ValueError(f"the value of {name} contains a line break")


def parse_headers(text: str, *, file: str = "_headers") -> list[HeaderRule]:
    problems: list[RuleProblem] = []
    rules: list[HeaderRule] = []
    if len(text.encode("utf-8")) > MAX_FILE_BYTES:
        raise RulesError([RuleProblem(file, 0, f"is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")])
    # The block being read: its path, line, headers, and whether any of its lines was refused
    # (then "no headers under it" would only repeat the problem). path None: an invalid path line,
    # whose header lines are skipped.
    current: tuple[str | None, int, list[tuple[str, str]], list[bool]] | None = None

    def close() -> None:
        if current is None:
            return
        path, number, values, refused = current
        if path is None:
            return
        if values:
            rules.append(HeaderRule(source=f"{file}:{number}", path=path, values=tuple(values)))
        elif not refused:
            problems.append(RuleProblem(file, number, f"{path} has no headers under it (indent 'Name: value' lines)"))

    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indented = raw[:1] in (" ", "\t")
        if not indented:
            close()
            current = (None, number, [], [True])
            if " " in stripped or "\t" in stripped:
                problems.append(RuleProblem(file, number, f"{stripped!r}: a path line holds one path"))
                continue
            try:
                compile_header_path(stripped)
            except ValueError as exc:
                problems.append(RuleProblem(file, number, str(exc)))
                continue
            current = (stripped, number, [], [])
            continue
        if current is None:
            problems.append(RuleProblem(file, number, "a header line before any path"))
            continue
        if current[0] is None:
            continue
        name, colon, value = stripped.partition(":")
        try:
            if not colon:
                raise ValueError(f"{stripped!r} is not 'Name: value'")
            _check_header(name.strip(), value.strip())
        except ValueError as exc:
            problems.append(RuleProblem(file, number, str(exc)))
            current[3].append(True)
            continue
        current[2].append((name.strip(), value.strip()))
    close()
    if problems:
        raise RulesError(problems)
    return rules


# --- troy.json ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SiteConfig:
    spa: str | None = None  # the fallback document for navigations ("index.html")
    not_found: str | None = None
    trailing_slash: str = "add"
    clean_urls: bool = False
    headers: tuple[HeaderRule, ...] = ()
    redirects: tuple[Redirect, ...] = ()
    # (username, password) in clear, as troy.json wrote them: only ever hashed (Rules.build),
    # never stored or logged.
    basic_auth: tuple[tuple[str, str], ...] = field(default=(), repr=False)


CONFIG_KEYS = {"$schema", "spa", "not_found", "trailing_slash", "clean_urls", "headers", "redirects", "basic_auth"}

# --- visitor passwords (basic_auth) -------------------------------------------------------------
# Checked by the viewer function (edge/viewer_request.js), before CloudFront's cache: an S3 origin
# cannot vary its cached answers by Authorization. The build keeps only salted hashes, one
# credential per user: "{salt}:{sha256 hex of salt ':' username ':' password}"; a credential
# starting with "*" accepts any username (hashed with an empty one). The pointer value carries
# them (pipelines.models.pointer_value), so it must stay far below the store's 1 KB per value.
MAX_BASIC_AUTH_USERS = 5
MAX_CREDENTIAL_FIELD = 128
CREDENTIAL = re.compile(r"\*?[0-9a-f]{16,64}:[0-9a-f]{64}")


def credential_hash(*, salt: str, username: str, password: str) -> str:
    """The credential the viewer function checks an `Authorization: Basic` header against."""
    digest = hashlib.sha256(f"{salt}:{username}:{password}".encode()).hexdigest()
    return f"{salt}:{digest}"


def credential_make(*, username: str, password: str, salt: str | None = None) -> str:
    """A salted credential for one user; ``username`` "" accepts any username ("*" prefix)."""
    salt = secrets.token_hex(8) if salt is None else salt
    made = credential_hash(salt=salt, username=username, password=password)
    return made if username else "*" + made


def credential_problem(username: object, password: object, *, username_required: bool = True) -> str | None:
    """Why a username/password pair cannot be a visitor credential, or None."""
    if not isinstance(username, str) or not isinstance(password, str):
        return "username and password must be strings"
    if username_required and not username:
        return "username must not be empty"
    if ":" in username:
        return "username must not contain ':' (Basic authentication separates it from the password with one)"
    if not password:
        return "password must not be empty"
    if len(username) > MAX_CREDENTIAL_FIELD or len(password) > MAX_CREDENTIAL_FIELD:
        return f"username and password are at most {MAX_CREDENTIAL_FIELD} characters"
    if any(ord(c) < 32 or ord(c) == 127 for c in username + password):
        return "username and password must not contain control characters"
    return None


def _parse_basic_auth(value: object, problem: Callable[[str], None]) -> tuple[tuple[str, str], ...]:
    users = value if isinstance(value, list) else [value]
    if not users:
        problem("basic_auth must name at least one user")
        return ()
    if len(users) > MAX_BASIC_AUTH_USERS:
        problem(f"basic_auth names {len(users)} users: at most {MAX_BASIC_AUTH_USERS} per build")
        return ()
    found: list[tuple[str, str]] = []
    for index, item in enumerate(users):
        where = "basic_auth" if not isinstance(value, list) else f"basic_auth[{index}]"
        if not isinstance(item, dict) or set(item) != {"username", "password"}:
            problem(
                f'{where} must be {{"username": ..., "password": ...}} (or a list of them); '
                "path-scoped passwords are not supported"
            )
            continue
        why = credential_problem(item["username"], item["password"])
        if why is not None:
            problem(f"{where}: {why}")
            continue
        found.append((item["username"], item["password"]))
    if len({username for username, _ in found}) != len(found):
        problem("basic_auth names a username twice")
        return ()
    return tuple(found)


def parse_config(text: str, *, file: str = "troy.json") -> SiteConfig:
    try:
        data = json.loads(text)
    except ValueError as exc:
        line = getattr(exc, "lineno", 0)
        raise RulesError([RuleProblem(file, line, f"is not JSON: {exc}")]) from exc
    if not isinstance(data, dict):
        raise RulesError([RuleProblem(file, 0, "must be a JSON object")])
    problems: list[RuleProblem] = []

    def problem(message: str) -> None:
        problems.append(RuleProblem(file, 0, message))

    for key in sorted(set(data) - CONFIG_KEYS):
        problem(f"unknown key {key!r} (known: {', '.join(sorted(CONFIG_KEYS - {'$schema'}))})")
    spa = data.get("spa")
    if spa is True:
        spa = "index.html"
    if spa is not None and spa is not False and not _is_file_path(spa):
        problem('spa must be true or a file of the build such as "index.html"')
    not_found = data.get("not_found")
    if not_found is not None and not _is_file_path(not_found):
        problem('not_found must be a file of the build such as "404.html"')
    trailing = data.get("trailing_slash", "add")
    if trailing not in TRAILING_SLASH:
        problem(f"trailing_slash must be one of {', '.join(TRAILING_SLASH)}")
    clean_urls = data.get("clean_urls", False)
    if not isinstance(clean_urls, bool):
        problem("clean_urls must be true or false")
    redirects: list[Redirect] = []
    for index, item in enumerate(_list(data, "redirects", problem)):
        where = f"{file} redirects[{index}]"
        if (
            not isinstance(item, dict)
            or not {"from", "to"} <= set(item)
            or set(item) - {"from", "to", "status", "force", "query"}
        ):
            problems.append(
                RuleProblem(
                    file, 0, f"redirects[{index}] must be an object with from, to and optionally status, force, query"
                )
            )
            continue
        query = item.get("query", {})
        status = item.get("status", DEFAULT_STATUS)
        if not isinstance(query, dict) or not all(isinstance(v, str) for v in query.values()):
            problems.append(RuleProblem(file, 0, f"redirects[{index}].query must map names to strings"))
            continue
        if isinstance(status, bool) or not isinstance(status, int):
            problems.append(RuleProblem(file, 0, f"redirects[{index}].status must be a number"))
            continue
        rule = Redirect(
            source=where,
            from_path=str(item["from"]),
            to=str(item["to"]),
            status=status,
            force=bool(item.get("force", False)),
            query=tuple(sorted(query.items())),
        )
        try:
            _check_redirect(rule)
        except ValueError as exc:
            problems.append(RuleProblem(file, 0, f"redirects[{index}]: {exc}"))
            continue
        redirects.append(rule)
    headers: list[HeaderRule] = []
    for index, item in enumerate(_list(data, "headers", problem)):
        if not isinstance(item, dict) or set(item) != {"for", "values"} or not isinstance(item["values"], dict):
            problems.append(
                RuleProblem(file, 0, f'headers[{index}] must be {{"for": path, "values": {{name: value}}}}')
            )
            continue
        try:
            compile_header_path(str(item["for"]))
            for name, value in item["values"].items():
                if not isinstance(value, str):
                    raise ValueError(f"the value of {name} must be a string")
                _check_header(name, value)
        except ValueError as exc:
            problems.append(RuleProblem(file, 0, f"headers[{index}]: {exc}"))
            continue
        headers.append(
            HeaderRule(source=f"{file} headers[{index}]", path=str(item["for"]), values=tuple(item["values"].items()))
        )
    basic_auth = _parse_basic_auth(data["basic_auth"], problem) if "basic_auth" in data else ()
    if problems:
        raise RulesError(problems)
    return SiteConfig(
        spa=spa if isinstance(spa, str) else None,
        not_found=not_found,
        trailing_slash=trailing,
        clean_urls=clean_urls,
        headers=tuple(headers),
        redirects=tuple(redirects),
        basic_auth=basic_auth,
    )


def _hash_users(users: tuple[tuple[str, str], ...], salt: str | None) -> list[dict[str, str]]:
    salt = secrets.token_hex(8) if salt is None else salt
    return [
        {"user": username, "credential": credential_make(username=username, password=password, salt=salt)}
        for username, password in users
    ]


def _list(data: dict[str, Any], key: str, problem: Callable[[str], None]) -> list[Any]:
    value = data.get(key, [])
    if not isinstance(value, list):
        problem(f"{key} must be a list")
        return []
    return value


def _is_file_path(value: Any) -> bool:
    return (
        isinstance(value, str)
        and bool(value)
        and not value.startswith("/")
        and not value.endswith("/")
        and all(part not in ("", ".", "..") for part in value.split("/"))
    )


# --- the compiled rules -------------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    """What a redirect rule decided for a request."""

    status: int
    location: str  # a URL or path for a redirect; the build path to serve for 200/404/410/451
    rule: str  # where it was written


@dataclass
class Rules:
    """A build's rules, as stored in its manifest (`to_dict`) and applied per request."""

    redirects: list[Redirect] = field(default_factory=list)
    headers: list[HeaderRule] = field(default_factory=list)
    spa: str | None = None
    not_found: str | None = None
    trailing_slash: str = "add"
    clean_urls: bool = False
    # Visitor credentials, hashed: [{"user": name, "credential": "{salt}:{sha256}"}] (see above).
    basic_auth: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._patterns = [compile_redirect_path(rule.from_path) for rule in self.redirects]
        self._exact: dict[str, int] = {}
        self._by_segment: dict[str, list[int]] = {}
        self._anywhere: list[int] = []
        for index, pattern in enumerate(self._patterns):
            if pattern.exact and not self.redirects[index].query:
                self._exact.setdefault(pattern.source, index)
            elif pattern.first_segment:
                self._by_segment.setdefault(pattern.first_segment, []).append(index)
            else:
                self._anywhere.append(index)
        self._header_paths = [compile_header_path(rule.path) for rule in self.headers]

    # -- building --

    @classmethod
    def build(
        cls,
        *,
        redirects_text: str | None = None,
        headers_text: str | None = None,
        config_text: str | None = None,
        salt: str | None = None,
    ) -> Rules:
        """From the build's `_redirects`, `_headers` and `troy.json` (None when absent). troy.json's
        redirects and headers come after the files' (the files are the Netlify-compatible base).
        troy.json's basic_auth passwords are hashed here with ``salt`` (random per build when
        None): the clear text goes no further."""
        problems: list[RuleProblem] = []
        redirects: list[Redirect] = []
        headers: list[HeaderRule] = []
        config = SiteConfig()
        try:
            if redirects_text is not None:
                redirects.extend(parse_redirects(redirects_text))
        except RulesError as exc:
            problems.extend(exc.problems)
        try:
            if headers_text is not None:
                headers.extend(parse_headers(headers_text))
        except RulesError as exc:
            problems.extend(exc.problems)
        if config_text is not None:
            try:
                config = parse_config(config_text)
            except RulesError as exc:
                problems.extend(exc.problems)
        redirects.extend(config.redirects)
        headers.extend(config.headers)
        patterns = sum(1 for rule in redirects if not compile_redirect_path(rule.from_path).exact or rule.query)
        if patterns > MAX_PATTERN_RULES:
            problems.append(
                RuleProblem("_redirects", 0, f"{patterns} pattern rules: at most {MAX_PATTERN_RULES} per build")
            )
        if len(redirects) - patterns > MAX_EXACT_REDIRECTS:
            problems.append(
                RuleProblem(
                    "_redirects", 0, f"{len(redirects) - patterns} exact redirects: at most {MAX_EXACT_REDIRECTS}"
                )
            )
        if len(headers) > MAX_HEADER_RULES:
            problems.append(RuleProblem("_headers", 0, f"{len(headers)} header rules: at most {MAX_HEADER_RULES}"))
        if problems:
            raise RulesError(problems)
        return cls(
            redirects=redirects,
            headers=headers,
            spa=config.spa,
            not_found=config.not_found,
            trailing_slash=config.trailing_slash,
            clean_urls=config.clean_urls,
            basic_auth=_hash_users(config.basic_auth, salt),
        )

    @property
    def credentials(self) -> list[str]:
        """The build's visitor credentials as the pointer value carries them."""
        return [item["credential"] for item in self.basic_auth]

    def missing_files(self, files: set[str]) -> list[RuleProblem]:
        """Targets the build must contain: spa, not_found, and the paths of content rules
        (200/404/410/451) without placeholders."""
        problems = []
        for name, value in (("spa", self.spa), ("not_found", self.not_found)):
            if value is not None and value not in files:
                problems.append(RuleProblem("troy.json", 0, f"{name} names {value!r}, which is not in the build"))
        for rule in self.redirects:
            target = rule.to.split("?", 1)[0]
            if rule.status in CONTENT_STATUSES and ":" not in target:
                relative = target.lstrip("/")
                if not (relative in files or (relative.rstrip("/") + "/index.html").lstrip("/") in files):
                    file, _, line = rule.source.partition(":")
                    problems.append(
                        RuleProblem(
                            file, int(line) if line.isdigit() else 0, f"target {rule.to} is not a file of the build"
                        )
                    )
        return problems

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"version": RULES_VERSION}
        if self.redirects:
            data["redirects"] = [rule.to_dict() for rule in self.redirects]
        if self.headers:
            data["headers"] = [rule.to_dict() for rule in self.headers]
        for key in ("spa", "not_found"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        if self.trailing_slash != "add":
            data["trailing_slash"] = self.trailing_slash
        if self.clean_urls:
            data["clean_urls"] = True
        if self.basic_auth:
            data["basic_auth"] = [dict(item) for item in self.basic_auth]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rules:
        if not data:
            return cls()
        if data.get("version") != RULES_VERSION:
            raise ValueError(f"unsupported rules version {data.get('version')!r}")
        return cls(
            redirects=[Redirect.from_dict(item) for item in data.get("redirects", [])],
            headers=[HeaderRule.from_dict(item) for item in data.get("headers", [])],
            spa=data.get("spa"),
            not_found=data.get("not_found"),
            trailing_slash=data.get("trailing_slash", "add"),
            clean_urls=bool(data.get("clean_urls", False)),
            basic_auth=[
                {"user": str(item["user"]), "credential": str(item["credential"])}
                for item in data.get("basic_auth", [])
            ],
        )

    @property
    def empty(self) -> bool:
        return not self.to_dict().keys() - {"version"}

    # -- applying --

    def redirect_for(self, path: str, query: str, *, file_exists: Callable[[str], bool]) -> Match | None:
        """The first rule matching a request (raw path as sent, raw query string), or None.

        A rule without `!` does not apply where the build has a file for the path (shadowing,
        as on Netlify): ``file_exists(path)`` answers that (index.html of a folder counts)."""
        normalized = _normalize(path)
        exact = self._exact.get(normalized)
        candidates = list(self._anywhere)
        first = normalized.split("/", 2)[1] if normalized != "/" else ""
        candidates.extend(self._by_segment.get(first, ()))
        if exact is not None:
            candidates.append(exact)
        params = dict(parse_qsl(query, keep_blank_values=True)) if query else {}
        shadowed: bool | None = None
        for index in sorted(candidates):
            rule = self.redirects[index]
            captured = self._patterns[index].match(path)
            if captured is None:
                continue
            if rule.query:
                captured = self._match_query(rule, params, captured)
                if captured is None:
                    continue
            if not rule.force:
                if shadowed is None:
                    shadowed = file_exists(path)
                if shadowed:
                    continue
            return Match(status=rule.status, location=self._target(rule, captured, query), rule=rule.source)
        return None

    @staticmethod
    def _match_query(rule: Redirect, params: dict[str, str], captured: dict[str, str]) -> dict[str, str] | None:
        captured = dict(captured)
        for name, expected in rule.query:
            if name not in params:
                return None
            if expected.startswith(":"):
                captured[expected[1:]] = params[name]
            elif params[name] != expected:
                return None
        return captured

    @staticmethod
    def _target(rule: Redirect, captured: dict[str, str], query: str) -> str:
        target = rule.to
        for name in sorted(captured, key=len, reverse=True):
            target = target.replace(f":{name}", captured[name])
        if rule.status in REDIRECT_STATUSES and query and "?" not in target and not rule.query:
            target += "?" + query  # the request's query goes along, as on Netlify
        return target

    def headers_for(self, path: str) -> list[tuple[str, str]]:
        """The custom headers of a response to `path` (raw, as sent). Every matching block
        applies; for one header name a later block replaces an earlier one."""
        chosen: dict[str, tuple[str, str]] = {}
        for rule, compiled in zip(self.headers, self._header_paths, strict=True):
            if not compiled.fullmatch(path):
                continue
            block: dict[str, tuple[str, str]] = {}
            for name, value in rule.values:
                key = name.lower()
                if key in block:
                    block[key] = (block[key][0], block[key][1] + ", " + value)
                else:
                    block[key] = (name, value)
            chosen.update(block)
        return list(chosen.values())


def is_navigation(headers: dict[str, str], path: str) -> bool:
    """Whether a request is a browser navigating to a page (the only kind a SPA fallback
    answers): `Sec-Fetch-Mode: navigate`, or an `Accept` that prefers HTML, and a last segment
    without a file extension (a missing `/assets/x.js` stays a real 404)."""
    name = path.rsplit("/", 1)[-1]
    if "." in name:
        return False
    mode = headers.get("sec-fetch-mode", "")
    if mode:
        return mode == "navigate"
    accept = headers.get("accept", "")
    return _prefers_html(accept)


def _prefers_html(accept: str) -> bool:
    best_html, best_other = -1.0, -1.0
    for part in accept.split(","):
        media, *params = [piece.strip() for piece in part.split(";")]
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if media in ("text/html", "application/xhtml+xml"):
            best_html = max(best_html, q)
        elif media:
            best_other = max(best_other, q if media != "*/*" else q - 0.001)
    return best_html > 0 and best_html >= best_other
