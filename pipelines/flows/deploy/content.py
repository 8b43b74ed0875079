"""Content-Type and Cache-Control for a site's files, from a fixed table (never the OS's
``mimetypes``, which differs between machines and images).

Cache classes:

* pages — HTML and extensionless files: ``public, max-age=0, must-revalidate`` (browsers and
  CloudFront ask again every time, so a deploy shows at once);
* fingerprinted assets — a content hash in the name (``app.3f9a1c.js``, ``main-3F9A1C2B.css``,
  Vite's ``index-D-9fz1Xa.js``): ``public, max-age=31536000, immutable``; the name changes when
  the content does;
* everything else (``logo.png``, ``robots.txt``): a short ``public, max-age=300``.
"""

from __future__ import annotations

from dataclasses import dataclass
import re

CACHE_PAGE = "public, max-age=0, must-revalidate"
CACHE_IMMUTABLE = "public, max-age=31536000, immutable"
CACHE_SHORT = "public, max-age=300"

HTML = "text/html; charset=utf-8"
OCTET_STREAM = "application/octet-stream"

CONTENT_TYPES = {
    "html": HTML,
    "htm": HTML,
    "css": "text/css; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
    "mjs": "text/javascript; charset=utf-8",
    "cjs": "text/javascript; charset=utf-8",
    "json": "application/json",
    "map": "application/json",
    "webmanifest": "application/manifest+json",
    "xml": "application/xml",
    "rss": "application/rss+xml",
    "atom": "application/atom+xml",
    "txt": "text/plain; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "svg": "image/svg+xml",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "avif": "image/avif",
    "ico": "image/x-icon",
    "bmp": "image/bmp",
    "woff": "font/woff",
    "woff2": "font/woff2",
    "ttf": "font/ttf",
    "otf": "font/otf",
    "eot": "application/vnd.ms-fontobject",
    "wasm": "application/wasm",
    "pdf": "application/pdf",
    "zip": "application/zip",
    "mp4": "video/mp4",
    "webm": "video/webm",
    "ogv": "video/ogg",
    "mp3": "audio/mpeg",
    "ogg": "audio/ogg",
    "wav": "audio/wav",
    "m4a": "audio/mp4",
    "vtt": "text/vtt; charset=utf-8",
}

_HEX = re.compile(r"[0-9a-f]{6,64}|[0-9A-F]{6,64}")
_B64 = re.compile(r"[A-Za-z0-9_-]{8,32}")
_SEPARATORS = ".-_"


def extension(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    stem, dot, ext = name.rpartition(".")
    return ext.lower() if dot and stem else ""


def _looks_like_hash(candidate: str) -> bool:
    has_digit = any(c.isdigit() for c in candidate)
    has_alpha = any(c.isalpha() for c in candidate)
    if _HEX.fullmatch(candidate):
        # A digit and a letter: not a word ("decade") nor a date ("20240101").
        return has_digit and has_alpha
    if _B64.fullmatch(candidate) and has_alpha and has_digit:
        # A digit keeps words out ("OpenSans", "Roboto-Bold"); the hashes without one (about a
        # quarter of Vite's) get the short max-age: slower, never stale.
        if any(c.isupper() for c in candidate):
            return True  # Vite/Rollup base64url, esbuild base32
        # Lowercase base36: at least two digits, one of them before a letter (not "photo2024").
        digits = sum(c.isdigit() for c in candidate)
        return digits >= 2 and re.search(r"\d[a-z]", candidate) is not None
    return False


def is_fingerprinted(path: str) -> bool:
    """True when the file name carries a content hash after a separator, before an extension."""
    name = path.rsplit("/", 1)[-1]
    stem, dot, _ = name.rpartition(".")
    if not dot or not stem:
        return False
    for index, char in enumerate(stem):
        if char in _SEPARATORS and index > 0:
            candidate = stem[index + 1 :].split(".", 1)[0]
            if _looks_like_hash(candidate):
                return True
    return False


def sniff_html(head: bytes) -> bool:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return text.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<!--"))


@dataclass(frozen=True)
class ObjectHeaders:
    content_type: str
    cache_control: str

    @property
    def is_html(self) -> bool:
        return self.content_type.startswith("text/html")


def object_headers(path: str, head: bytes = b"") -> ObjectHeaders:
    ext = extension(path)
    if not ext:
        # Extensionless files are pages (pretty URLs) or plain files such as LICENSE or CNAME.
        return ObjectHeaders(HTML if sniff_html(head) else OCTET_STREAM, CACHE_PAGE)
    content_type = CONTENT_TYPES.get(ext, OCTET_STREAM)
    if content_type == HTML:
        return ObjectHeaders(content_type, CACHE_PAGE)
    if is_fingerprinted(path):
        return ObjectHeaders(content_type, CACHE_IMMUTABLE)
    return ObjectHeaders(content_type, CACHE_SHORT)
