"""Placeholder: written by a helper."""

from django.http import Http404


def help_page(request, *args, **kwargs):
    raise Http404


def contact(request, *args, **kwargs):
    raise Http404


def how_it_works(request, *args, **kwargs):
    raise Http404


def privacy(request, *args, **kwargs):
    raise Http404


def terms(request, *args, **kwargs):
    raise Http404
