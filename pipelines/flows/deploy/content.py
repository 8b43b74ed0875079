"""Content-Type and Cache-Control for a site's files, from a fixed table (never the OS's
``mimetypes``, which differs between machines and images).

Cache classes:

* pages — HTML and extensionless files: ``public, max-age=0, must-revalidate`` (browsers and
  CloudFront ask again every time, so a deploy shows at once);
* fingerprinted assets — a content hash in the name (``app.3f9a1c2b.js``, ``main-3f9a1c2b.css``,
  Vite's ``index-BmR3xq9Z.js``): ``public, max-age=31536000, immutable``. The rule is
  ``edge.manifest.is_fingerprinted``, the one the viewer function applies (docs/edge.md, "The
  fingerprint rule"), so exactly the paths served from ``/_immutable`` (shared by every build)
  are ``immutable``; the deploy refuses other bytes under such a name (``fingerprint_reused``);
* everything else (``logo.png``, ``robots.txt``): a short ``public, max-age=300``.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.manifest import is_fingerprinted

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


def extension(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    stem, dot, ext = name.rpartition(".")
    return ext.lower() if dot and stem else ""


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
