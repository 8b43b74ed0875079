"""A test client that posts forms as a browser does when the form has no file field:
``application/x-www-form-urlencoded``. Django's test client posts multipart by default, which
Troy refuses (415) everywhere but the release upload."""

from __future__ import annotations

from urllib.parse import urlencode

from django.test import Client

FORM_URLENCODED = "application/x-www-form-urlencoded"


class FormClient(Client):
    def post(self, path, data=None, content_type=FORM_URLENCODED, **extra):
        if content_type == FORM_URLENCODED and isinstance(data, dict):
            data = urlencode(data, doseq=True)
        return super().post(path, data or "", content_type=content_type, **extra)
