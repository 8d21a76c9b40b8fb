"""The dashboard's exports: ask for a file of a period, follow its progress, download it.

Every staff role may export. Each read is scoped to the user's merchant and the selected
mode: another merchant's export, or the other mode's, is a 404.
"""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from apps.common.dates import business_date
from apps.common.errors import NotFound
from apps.merchants.access import merchant_required
from apps.payments import exports
from apps.payments.models import DataExport

RECENT = 50


class ExportForm(forms.Form):
    kind = forms.ChoiceField(label=gettext_lazy("Data"), choices=DataExport.Kind.choices)
    start = forms.DateField(
        label=gettext_lazy("From"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    end = forms.DateField(
        label=gettext_lazy("To (included)"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end:
            if start > end:
                self.add_error("end", _("The last day comes before the first day."))
            elif (end - start).days + 1 > exports.MAX_RANGE_DAYS:
                self.add_error(
                    "end",
                    _("A period is at most %(days)s days: split the export.")
                    % {"days": exports.MAX_RANGE_DAYS},
                )
        return data


def _initial() -> dict:
    today = business_date(timezone.now())
    return {
        "kind": DataExport.Kind.PAYMENTS,
        "start": today - exports.DEFAULT_PERIOD + timedelta(days=1),
        "end": today,
    }


def _export_or_404(request, export_id: str) -> DataExport:
    try:
        return exports.export_get(
            merchant=request.merchant, livemode=request.livemode, export_id=export_id
        )
    except NotFound as exc:
        raise Http404 from exc


@merchant_required
@require_http_methods(["GET", "POST"])
def export_list(request):
    """The form asking for an export (the last 30 days by default) and the recent ones."""
    form = ExportForm(request.POST or None, initial=_initial())
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        start, end = exports.period_of(start_date=data["start"], end_date=data["end"])
        try:
            export = exports.export_request(
                merchant=request.merchant,
                livemode=request.livemode,
                kind=data["kind"],
                start=start,
                end=end,
                origin=DataExport.Origin.DASHBOARD,
                created_by=request.user,
                now=timezone.now(),
            )
        except exports.ExportInvalid as exc:
            form.add_error(None, exc.message)
        else:
            return redirect("dashboard:export", export_id=export.public_id)
    recent = exports.exports_recent(
        merchant=request.merchant, livemode=request.livemode, limit=RECENT
    )
    status = 400 if form.is_bound and form.errors else 200
    return render(
        request, "dashboard/exports.html", {"form": form, "exports": recent}, status=status
    )


def _progress_json(export: DataExport) -> dict:
    return {
        "id": export.public_id,
        "status": export.status,
        "status_label": str(export.get_status_display()),
        "rows_done": export.rows_done,
        "rows_total": export.rows_total,
        "complete": export.complete,
    }


@merchant_required
@require_http_methods(["GET", "POST"])
def export_detail(request, export_id):
    """One export: its progress while it is built (``?format=json`` for the page's script),
    its files once done, its error and a "try again" button if it failed."""
    export = _export_or_404(request, export_id)
    if request.method == "POST":
        if request.POST.get("action") == "retry" and export.status == DataExport.Status.FAILED:
            exports.export_retry(export=export, now=timezone.now())
        return redirect("dashboard:export", export_id=export.public_id)
    if request.GET.get("format") == "json":
        return JsonResponse(_progress_json(export))
    return render(request, "dashboard/export.html", {"export": export})


@merchant_required
def export_download(request, export_id, file_format):
    """A done export's file, as an attachment with a readable name."""
    if file_format not in exports.FORMATS:
        raise Http404
    export = _export_or_404(request, export_id)
    if not export.complete:
        raise Http404
    try:
        handle = exports.export_open(export=export, file_format=file_format)
    except NotFound as exc:
        raise Http404 from exc
    return FileResponse(
        handle,
        as_attachment=True,
        filename=exports.download_name(export, file_format),
        content_type=exports.CONTENT_TYPES[file_format],
    )
