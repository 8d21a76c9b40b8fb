"""Placeholder: written by a helper."""

from django.http import Http404


def change_card(request, *args, **kwargs):
    raise Http404


def three_ds_return(request, *args, **kwargs):
    raise Http404
