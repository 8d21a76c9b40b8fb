import json

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number out of range: {text}")
    return value


def _unstorable_string_problem(data) -> str | None:
    """Strings PostgreSQL cannot store or UTF-8 cannot encode, anywhere in the document."""
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return "strings must not contain the NUL character (\\u0000)"
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return "strings must not contain lone UTF-16 surrogates"
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return None


class JSONParser(parsers.JSONParser):
    """Strict JSON bodies. An empty body reads as ``{}`` (DRF does that before any parser).

    Everything a client can send that would break later (numbers out of range, NaN,
    nesting deeper than Python recurses, NUL characters PostgreSQL refuses, lone
    surrogates UTF-8 cannot encode, bodies over DATA_UPLOAD_MAX_MEMORY_SIZE, which DRF's
    raw stream reading would otherwise bypass) is a 400 here, naming the problem.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1)
        if len(raw) > limit:
            raise ParseError(f"Request body too large: at most {limit} bytes.", "request_too_large")
        try:
            text = raw.decode("utf-8")
            data = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
        except UnicodeDecodeError as exc:
            raise ParseError(f"Malformed JSON body: not UTF-8 ({exc.reason}).") from exc
        except ValueError as exc:
            raise ParseError(f"Malformed JSON body: {exc}") from exc
        except RecursionError as exc:
            raise ParseError("Malformed JSON body: nested too deeply.") from exc
        if problem := _unstorable_string_problem(data):
            raise ParseError(f"Invalid JSON body: {problem}.")
        return data
