import re

from django.utils import translation

API_PATH = re.compile(r"^/v[12](/|$)")


def is_api_path(path: str) -> bool:
    """Whether a path is under the merchant API's root (JSON errors, English messages)."""
    return API_PATH.match(path) is not None


class APILanguageMiddleware:
    """The merchant API speaks English, like the API it is compatible with, whatever the
    dashboard's default language; pages keep the visitor's language."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if is_api_path(request.path_info):
            translation.activate("en")
            request.LANGUAGE_CODE = "en"
        return self.get_response(request)
