"""HTTP access to Troy's REST API: one session, the token header, and one way of turning an
answer that is not a success into a message (``error: <detail> (<code>)``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests

from troy_cli import __version__
from troy_cli.config import LOGIN_HINT, Config
from troy_cli.errors import EXIT_FAILED, EXIT_USAGE, CliError

# (connect, read) seconds. An upload's answer comes after the server has checked the whole zip.
TIMEOUT = (10, 60)
UPLOAD_TIMEOUT = (10, 900)


class ApiError(CliError):
    """The API answered with an error status."""

    def __init__(self, message: str, *, status: int, code: str = "", body: Any = None, hint: str = "") -> None:
        super().__init__(message, hint=hint, exit_code=EXIT_USAGE if status == 401 else EXIT_FAILED)
        self.status = status
        self.code = code
        self.body = body


class Unreachable(CliError):
    """No HTTP answer at all (refused, DNS, TLS, timeout, connection dropped)."""


def describe_error(status: int, reason: str, body: Any) -> tuple[str, str]:
    """``(message, code)`` for an error answer, in the ``<detail> (<code>)`` shape."""
    if not isinstance(body, dict) or "detail" not in body:
        return f"HTTP {status} {reason}".strip(), ""
    code = str(body.get("code") or "")
    message = str(body["detail"])
    if code:
        message += f" ({code})"
    if status == 409 and "status" in body:
        allowed = body.get("allowed") or []
        message += f"\n  current status: {body['status']}"
        message += f"\n  allowed now: {', '.join(map(str, allowed)) if allowed else 'nothing'}"
    errors = body.get("errors")
    if isinstance(errors, dict):
        for field, problems in errors.items():
            problems = problems if isinstance(problems, list) else [problems]
            message += f"\n  {field}: {' '.join(map(str, problems))}"
    elif isinstance(errors, list):
        message += "".join(f"\n  {problem}" for problem in errors)
    for key, value in body.items():  # context a server error carries (e.g. the offending entry)
        if key not in ("code", "detail", "status", "allowed", "errors") and isinstance(value, (str, int, float)):
            message += f"\n  {key}: {value}"
    return message, code


class Client:
    def __init__(self, config: Config, *, session: requests.Session | None = None) -> None:
        self.url = config.url
        self.api = f"{config.url}/api/v1/"
        self.session = session or requests.Session()
        self.session.headers.update(
            {
                "Authorization": f"Token {config.token}",
                "Accept": "application/json",
                "User-Agent": f"troy-cli/{__version__}",
            }
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict | None = None,
        json: Any = None,
        data: Any = None,
        headers: dict | None = None,
        timeout: tuple = TIMEOUT,
    ) -> Any:
        """Send a request to ``/api/v1/<path>``; the decoded JSON body (None when empty)."""
        response = self._send(method, path, params=params, json=json, data=data, headers=headers, timeout=timeout)
        try:
            return response.json() if response.content else None
        except ValueError:
            return None

    def get_text(self, path: str, *, params: dict | None = None) -> tuple[str, Mapping[str, str]]:
        """GET a plain-text answer (a build's log): its text and headers. Errors are JSON, as anywhere."""
        response = self._send("GET", path, params=params, headers={"Accept": "text/plain, application/json"})
        response.encoding = response.encoding or "utf-8"
        return response.text, response.headers

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict | None = None,
        json: Any = None,
        data: Any = None,
        headers: dict | None = None,
        timeout: tuple = TIMEOUT,
    ) -> requests.Response:
        """The answer to a request, or :class:`ApiError` for an error answer."""
        url = self.api + path.lstrip("/")
        try:
            response = self.session.request(
                method,
                url,
                params=params,
                json=json,
                data=data,
                headers=headers,
                timeout=timeout,
                allow_redirects=False,
            )
        except requests.exceptions.ConnectionError as exc:
            raise Unreachable(self._why_unreachable(exc, uploading=data is not None)) from exc
        except requests.exceptions.Timeout as exc:
            raise Unreachable(f"Troy at {self.url} did not answer in time") from exc
        except requests.exceptions.RequestException as exc:
            raise Unreachable(f"cannot talk to Troy at {self.url}: {exc}") from exc
        if response.status_code >= 400 or 300 <= response.status_code < 400:
            try:
                body = response.json() if response.content else None
            except ValueError:
                body = None
            message, code = describe_error(response.status_code, response.reason or "", body)
            hint = ""
            if response.status_code == 401:
                message = f"token rejected by {self.url}: {message}"
                hint = LOGIN_HINT
            elif 300 <= response.status_code < 400:
                message = f"{method} {url} was redirected to {response.headers.get('Location', '?')}"
                hint = "check the server URL (http vs https?)"
            elif body is None:
                message = f"{message} from {method} {url}"
            raise ApiError(message, status=response.status_code, code=code, body=body, hint=hint)
        return response

    def _why_unreachable(self, exc: Exception, *, uploading: bool) -> str:
        text = str(exc)
        if uploading and ("reset" in text.lower() or "broken pipe" in text.lower() or "aborted" in text.lower()):
            return (
                f"Troy at {self.url} closed the connection during the upload "
                "(it may have refused the file, e.g. over its size limit)"
            )
        if "refused" in text.lower():
            return f"cannot reach Troy at {self.url}: connection refused"
        if "Name or service not known" in text or "nodename nor servname" in text or "getaddrinfo" in text:
            return f"cannot reach Troy at {self.url}: unknown host"
        return f"cannot reach Troy at {self.url}: {text}"

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)

    def paginate(self, path: str, params: dict | None = None) -> Iterator[dict]:
        """Every item of a list endpoint, page after page.

        The ``next`` link's query is applied to our own URL rather than followed as given, so the
        token never goes to a host or scheme the server reconstructed behind a proxy."""
        params = dict(params or {})
        while True:
            body = self.get(path, params=params)
            if isinstance(body, list):  # an unpaginated endpoint
                yield from body
                return
            yield from body.get("results", [])
            following = body.get("next")
            if not following:
                return
            params = dict(parse_qsl(urlsplit(following).query))
