"""The ``troy`` command-line client. It talks only to Troy's REST API (``/api/v1/``)."""

__version__ = "1.0.0"
