"""The customer's page behind the SMS's short link (placeholder: being written)."""

from django.http import HttpResponse


def customer(request, code: str):
    return HttpResponse(status=501)
