"""Placeholder: written by a helper."""

from django.http import Http404


def data_rights(request, *args, **kwargs):
    raise Http404


def export_json(request, *args, **kwargs):
    raise Http404


def export_pdf(request, *args, **kwargs):
    raise Http404


def correction(request, *args, **kwargs):
    raise Http404


def deletion(request, *args, **kwargs):
    raise Http404


def decisions(request, *args, **kwargs):
    raise Http404
