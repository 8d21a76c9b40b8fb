from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """JSON bodies; an empty body reads as ``{}`` (DRF does that before calling a parser).

    Refuses oversized bodies up front: DRF reads the raw stream, which bypasses Django's own
    DATA_UPLOAD_MAX_MEMORY_SIZE check.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        request = (parser_context or {}).get("request")
        if request is not None:
            length = request.META.get("CONTENT_LENGTH") or "0"
            if length.isdigit() and int(length) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
                raise ParseError(
                    f"Request body too large: at most {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes."
                )
        try:
            return super().parse(stream, media_type, parser_context)
        except ParseError as exc:
            problem = str(exc.detail).replace("JSON parse error - ", "")
            raise ParseError(f"Malformed JSON body: {problem}") from exc
