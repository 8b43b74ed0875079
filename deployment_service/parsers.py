"""The API's request parser: DRF's JSON parser through :func:`deployment_service.limits.parse_json_body`
(depth, NUL and lone surrogates refused with 400). The release upload names its own multipart parser."""

from rest_framework.parsers import JSONParser


class SafeJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        # Imported here, not at the top: DRF imports this module while ``rest_framework.views``
        # loads, which ``deployment_service.exceptions`` (under limits) is importing at that moment.
        from deployment_service.limits import parse_json_body

        return parse_json_body(stream.read() if stream is not None else b"")
