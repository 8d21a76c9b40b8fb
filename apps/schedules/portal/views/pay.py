"""Placeholder: written by a helper."""

from django.http import Http404


def pay_early(request, *args, **kwargs):
    raise Http404
