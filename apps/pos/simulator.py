"""The simulated terminal page (placeholder: being written)."""

from django.http import HttpResponse


def simulator(request):
    return HttpResponse(status=501)
