import re

from django.utils import translation

API_PATH = re.compile(r"^/v[12](/|$)")


class APILanguageMiddleware:
    """The merchant API speaks English, like the API it is compatible with, whatever the
    dashboard's default language; pages keep the visitor's language."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if API_PATH.match(request.path_info):
            translation.activate("en")
            request.LANGUAGE_CODE = "en"
        return self.get_response(request)
