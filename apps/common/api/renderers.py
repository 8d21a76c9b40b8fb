from rest_framework import renderers


class JSONRenderer(renderers.JSONRenderer):
    """JSON with a content type of exactly ``application/json``.

    Alma's PHP client decodes a body only when the content type is exactly that string,
    so no ``; charset=`` suffix (UTF-8 is JSON's only encoding anyway).
    """

    media_type = "application/json"
    charset = None
