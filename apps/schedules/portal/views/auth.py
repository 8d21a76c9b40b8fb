"""Placeholder: written by a helper."""

from django.http import Http404


def sign_in(request, *args, **kwargs):
    raise Http404


def sign_in_code(request, *args, **kwargs):
    raise Http404


def sign_out(request, *args, **kwargs):
    raise Http404


def link(request, *args, **kwargs):
    raise Http404
