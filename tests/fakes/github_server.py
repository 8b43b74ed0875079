"""A small fake GitHub on loopback, for testing the GitHub App client over real HTTP.

Two ``http.server`` instances on 127.0.0.1 (random ports), each in a thread:

* the API (optionally under a path prefix, like GitHub Enterprise's ``/api/v3``): installation
  tokens (the app JWT is verified with the app's public key), the repository's installation,
  an installation's repositories (paged), ref → sha, the zipball (a 302 to the download host with a signed URL), commit
  statuses, deployments and their statuses;
* the download host, serving the archive only with the signed URL's token.

Every request is recorded (server, method, path, headers, body) so tests assert on what the
client really sent, e.g. that the Authorization header was not forwarded to the download host.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import io
import json
import re
import secrets
import threading
import time
from urllib.parse import parse_qs, unquote, urlsplit
import zipfile

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
import jwt


def app_keypair() -> tuple[str, bytes]:
    """A throwaway RSA key for a test GitHub App: (private PEM text for GITHUB_APP_PRIVATE_KEY,
    public PEM bytes for :class:`FakeGithub`)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


@dataclass
class Recorded:
    server: str  # "api" or "download"
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes = b""

    def json(self):
        return json.loads(self.body)


@dataclass
class FakeGithub:
    app_id: str
    public_key_pem: bytes
    prefix: str = ""
    token_lifetime: timedelta = timedelta(hours=1)
    refs: dict[tuple[str, str], str] = field(default_factory=dict)  # (owner/repo lower, branch or tag) → sha
    archives: dict[tuple[str, str], bytes] = field(default_factory=dict)  # (owner/repo lower, sha) → zip
    installations: dict[str, int] = field(default_factory=dict)  # owner/repo lower → installation id
    requests: list[Recorded] = field(default_factory=list)
    jwt_claims: list[dict] = field(default_factory=list)
    tokens: dict[str, int] = field(default_factory=dict)  # issued token → installation id
    statuses: list[tuple[str, str, dict]] = field(default_factory=list)  # (repo, sha, body)
    deployments: list[tuple[str, dict]] = field(default_factory=list)  # (repo, body); id = index + 1
    deployment_statuses: list[tuple[str, int, dict]] = field(default_factory=list)  # (repo, deployment id, body)
    # (owner/repo lower, base sha, head sha) → the compare answer's files ({"filename", "status", …})
    comparisons: dict[tuple[str, str, str], list[dict]] = field(default_factory=dict)
    # Fault injection: (server, path regex) → [answers left, HTTP status] (see fail_next)
    failures: dict[tuple[str, str], list[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._download_secret = secrets.token_urlsafe(16)
        self._servers: list[ThreadingHTTPServer] = []

    # --- set-up ------------------------------------------------------------------------------

    def add_commit(self, repository: str, ref: str, sha: str, archive: bytes) -> None:
        self.refs[(repository.lower(), ref)] = sha
        self.archives[(repository.lower(), sha)] = archive

    def add_comparison(self, repository: str, base: str, head: str, files: list[str | dict]) -> None:
        """What ``GET /repos/{o}/{r}/compare/{base}...{head}`` answers (a name is a modified file)."""
        self.comparisons[(repository.lower(), base, head)] = [
            f if isinstance(f, dict) else {"filename": f, "status": "modified"} for f in files
        ]

    def fail_next(self, path_re: str, *, times: int, status: int = 502, server: str = "api") -> None:
        """The next ``times`` requests whose path matches ``path_re`` get ``status`` (a GitHub outage)."""
        self.failures[(server, path_re)] = [times, status]

    def revoke_all_tokens(self) -> None:
        with self._lock:
            self.tokens.clear()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self._servers[0].server_port}{self.prefix}"

    @property
    def download_port(self) -> int:
        return self._servers[1].server_port

    def on(self, server: str, method: str | None = None, path_re: str = "") -> list[Recorded]:
        """Recorded requests to ``server`` (and method, and a path matching ``path_re``)."""
        return [
            r
            for r in self.requests
            if r.server == server and (method is None or r.method == method) and re.search(path_re, r.path)
        ]

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeGithub:
        for name in ("api", "download"):
            server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self, name))
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True, name=f"fake-github-{name}").start()
            self._servers.append(server)
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()

    def __enter__(self) -> FakeGithub:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- behaviour ---------------------------------------------------------------------------

    def _record(self, rec: Recorded) -> None:
        with self._lock:
            self.requests.append(rec)

    def _app_jwt_ok(self, headers: dict[str, str]) -> tuple[bool, str]:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False, "A JSON web token is required"
        try:
            claims = jwt.decode(
                token, self.public_key_pem, algorithms=["RS256"], options={"require": ["iat", "exp", "iss"]}
            )
        except jwt.PyJWTError as exc:
            return False, f"A JSON web token could not be decoded ({type(exc).__name__})"
        now = time.time()
        if claims["iss"] != self.app_id:
            return False, "'Issuer' claim ('iss') must be the app id"
        if claims["iat"] > now + 1 or claims["exp"] > now + 600 + 1:
            return False, "'Expiration time' claim ('exp') is too far in the future"
        with self._lock:
            self.jwt_claims.append(claims)
        return True, ""

    def _installation_of(self, headers: dict[str, str]) -> int | None:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() not in {"bearer", "token"}:
            return None
        with self._lock:
            return self.tokens.get(token)

    def handle(self, server: str, method: str, raw_path: str, headers: dict[str, str], body: bytes):
        """(status, headers, body) for one request."""
        self._record(Recorded(server, method, raw_path, headers, body))
        url = urlsplit(raw_path)
        with self._lock:
            for (fail_server, path_re), left in self.failures.items():
                if fail_server == server and left[0] > 0 and re.search(path_re, url.path):
                    left[0] -= 1
                    return _json(left[1], {"message": "Server Error (injected)"})
        if server == "download":
            return self._download(url)
        if not url.path.startswith(self.prefix + "/"):
            return _json(404, {"message": "Not Found"})
        path = url.path[len(self.prefix) :]

        if m := re.fullmatch(r"/app/installations/(\d+)/access_tokens", path):
            if method != "POST":
                return _json(404, {"message": "Not Found"})
            ok, why = self._app_jwt_ok(headers)
            if not ok:
                return _json(401, {"message": why})
            installation_id = int(m.group(1))
            if installation_id not in self.installations.values():
                return _json(404, {"message": "Not Found"})
            token = "ghs_" + secrets.token_urlsafe(60)  # longer than 40: the column must be text
            with self._lock:
                self.tokens[token] = installation_id
            expires = (datetime.now(UTC) + self.token_lifetime).replace(microsecond=0)
            return _json(
                201,
                {
                    "token": token,
                    "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "permissions": {"contents": "read", "statuses": "write"},
                },
            )

        if path == "/installation/repositories" and method == "GET":
            installation_id = self._installation_of(headers)
            if installation_id is None:
                return _json(401, {"message": "Bad credentials"})
            query = parse_qs(url.query)
            per_page = min(int(query.get("per_page", ["30"])[0]), 100)
            page = max(int(query.get("page", ["1"])[0]), 1)
            covered = sorted(name for name, owner in self.installations.items() if owner == installation_id)
            chunk = covered[(page - 1) * per_page : page * per_page]
            return _json(
                200,
                {"total_count": len(covered), "repositories": [{"full_name": name, "private": True} for name in chunk]},
            )

        m = re.fullmatch(
            r"/repos/([^/]+)/([^/]+)/(installation|commits|zipball|statuses|compare|deployments)(?:/(.+))?", path
        )
        if not m:
            return _json(404, {"message": "Not Found"})
        repository = f"{unquote(m.group(1))}/{unquote(m.group(2))}".lower()
        what, rest = m.group(3), unquote(m.group(4) or "")

        if what == "installation":
            ok, why = self._app_jwt_ok(headers)
            if not ok:
                return _json(401, {"message": why})
            if repository not in self.installations:
                return _json(404, {"message": "Not Found"})
            return _json(200, {"id": self.installations[repository], "app_id": int(self.app_id)})

        installation_id = self._installation_of(headers)
        if installation_id is None:
            return _json(401, {"message": "Bad credentials"})
        if self.installations.get(repository) != installation_id:
            return _json(404, {"message": "Not Found"})

        if what == "commits" and method == "GET":
            ref = rest.removeprefix("heads/").removeprefix("tags/")
            sha = self.refs.get((repository, ref)) or (ref if (repository, ref) in self.archives else None)
            if sha is None:
                return _json(422, {"message": f"No commit found for SHA: {rest}"})
            if headers.get("accept") == "application/vnd.github.sha":
                return 200, {"Content-Type": "application/vnd.github.sha"}, sha.encode()
            return _json(200, {"sha": sha})

        if what == "compare" and method == "GET":
            base, _, head = rest.partition("...")
            files = self.comparisons.get((repository, base, head))
            if files is None:
                return _json(404, {"message": "Not Found"})
            return _json(200, {"status": "ahead", "total_commits": 1, "commits": [], "files": files})

        if what == "zipball" and method == "GET":
            if (repository, rest) not in self.archives:
                return _json(404, {"message": "Not Found"})
            location = (
                f"http://127.0.0.1:{self.download_port}/{repository}/legacy.zip/{rest}?token={self._download_secret}"
            )
            return 302, {"Location": location}, b""

        if what == "statuses" and method == "POST":
            try:
                payload = json.loads(body)
            except ValueError:
                return _json(400, {"message": "Problems parsing JSON"})
            if payload.get("state") not in {"pending", "success", "failure", "error"}:
                return _json(422, {"message": "Validation Failed", "errors": [{"field": "state"}]})
            if len(payload.get("description") or "") > 140:
                return _json(422, {"message": "Validation Failed", "errors": [{"field": "description"}]})
            with self._lock:
                self.statuses.append((repository, rest, payload))
            return _json(201, {"id": len(self.statuses), **payload})

        if what == "deployments" and method == "POST":
            return self._deployments(repository, rest, body)

        return _json(404, {"message": "Not Found"})

    def _deployments(self, repository: str, rest: str, body: bytes):
        """``POST deployments`` and ``POST deployments/{id}/statuses``, checked as GitHub does."""
        try:
            payload = json.loads(body)
        except ValueError:
            return _json(400, {"message": "Problems parsing JSON"})
        if not rest:
            if not isinstance(payload.get("ref"), str) or not payload["ref"]:
                return _json(422, {"message": "Validation Failed", "errors": [{"field": "ref"}]})
            if payload.get("required_contexts") is None:
                # GitHub checks every context on the ref first; Troy's own pending status would fail it.
                return _json(409, {"message": "Conflict: Commit status checks failed for the ref."})
            with self._lock:
                self.deployments.append((repository, payload))
                deployment_id = len(self.deployments)
            return _json(201, {"id": deployment_id, **payload})
        m = re.fullmatch(r"(\d+)/statuses", rest)
        if not m or not (1 <= int(m.group(1)) <= len(self.deployments)):
            return _json(404, {"message": "Not Found"})
        states = {"error", "failure", "inactive", "in_progress", "queued", "pending", "success"}
        if payload.get("state") not in states:
            return _json(422, {"message": "Validation Failed", "errors": [{"field": "state"}]})
        if len(payload.get("description") or "") > 140:
            return _json(422, {"message": "Validation Failed", "errors": [{"field": "description"}]})
        with self._lock:
            self.deployment_statuses.append((repository, int(m.group(1)), payload))
        return _json(201, {"id": len(self.deployment_statuses), **payload})

    def _download(self, url):
        if parse_qs(url.query).get("token") != [self._download_secret]:
            return 403, {"Content-Type": "text/plain"}, b"bad signature"
        m = re.fullmatch(r"/([^/]+/[^/]+)/legacy\.zip/([0-9a-f]{40})", url.path)
        archive = self.archives.get((m.group(1), m.group(2))) if m else None
        if archive is None:
            return 404, {"Content-Type": "text/plain"}, b"not found"
        return 200, {"Content-Type": "application/zip"}, archive


def _json(status: int, body) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(body).encode()


def _handler(fake: FakeGithub, server_name: str):
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, out_headers, out = fake.handle(server_name, self.command, self.path, headers, body)
            self.send_response(status)
            for name, value in out_headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        def log_message(self, format, *args) -> None:  # quiet test output
            pass

    return Handler


# --- archives shaped like GitHub's zipballs ---------------------------------------------------------

FILE_MODE = 0o100644
EXECUTABLE_MODE = 0o100755
SYMLINK_MODE = 0o120777


def github_zipball(
    repository: str,
    sha: str,
    files: dict[str, bytes | tuple[bytes, int]],
    *,
    raw_entries: dict[str, tuple[bytes, int]] | None = None,
) -> bytes:
    """A zip like GitHub's: everything under ``{owner}-{repo}-{short sha}/``, with directory
    entries. ``files`` maps a path to content (or (content, unix mode)); ``raw_entries`` are added
    verbatim (names not prefixed), for unsafe cases."""
    owner, repo = repository.split("/")
    top = f"{owner}-{repo}-{sha[:7]}/"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        dirs = {top}
        for path in files:
            parts = path.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                dirs.add(top + "/".join(parts[:i]) + "/")
        for d in sorted(dirs):
            info = zipfile.ZipInfo(d, date_time=(2026, 5, 1, 12, 0, 0))
            info.external_attr = (0o040755 << 16) | 0x10
            info.create_system = 3
            zf.writestr(info, b"")
        entries = {
            top + path: (value if isinstance(value, tuple) else (value, FILE_MODE)) for path, value in files.items()
        }
        entries.update(raw_entries or {})
        for name, (content, mode) in entries.items():
            info = zipfile.ZipInfo(name, date_time=(2026, 5, 1, 12, 0, 0))
            info.external_attr = mode << 16
            info.create_system = 3
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, content)
    return buffer.getvalue()
