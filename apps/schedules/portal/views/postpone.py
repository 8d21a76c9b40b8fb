"""Placeholder: written by a helper."""

from django.http import Http404


def postpone(request, *args, **kwargs):
    raise Http404


def longer_delay(request, *args, **kwargs):
    raise Http404
