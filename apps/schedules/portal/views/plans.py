"""Placeholder: written by a helper."""

from django.http import Http404


def plans(request, *args, **kwargs):
    raise Http404


def plan(request, *args, **kwargs):
    raise Http404


def receipt(request, *args, **kwargs):
    raise Http404


def receipts(request, *args, **kwargs):
    raise Http404
