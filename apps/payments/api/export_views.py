"""Data exports (contract section 2, #23): ask for one, list them, fetch one, and download
its file with ``?format=csv|xlsx``.

The files are built in the background (``apps.payments.exports``): an export reads
``complete: false`` until they are ready, and its file URLs stay null until then. Both
spellings of the URL keys are sent (``url_csv`` as Alma's PHP 2 client reads them,
``csv_url`` as its PHP 3 client does); PDF, XML and ZIP files are not made: their keys are
present and null.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.http import FileResponse
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response

from apps.common.api.fields import StrictBooleanField, StrictIntegerField
from apps.merchants.api.base import MerchantAPIView
from apps.payments import exports
from apps.payments.api.payment_serializers import QueryTextField, validated
from apps.payments.models import DataExport

EXPORTS = ["data exports"]
DEFAULT_LIMIT = 5
MAX_TIMESTAMP = 4_102_444_800  # 2100-01-01
FILE_KEYS = ("csv", "xlsx", "pdf", "xml", "zip")


# At most 20 keys of at most 100 characters, comma-joined or in a list (a blank or repeated
# key is dropped). The schema says so, so that a request it allows is never refused.
CUSTOM_FIELDS_PATTERN = r"^[^,\x00]{0,100}(,[^,\x00]{0,100}){0,19}$"
CUSTOM_FIELD_PATTERN = r"^[^\x00]{0,100}$"


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "pattern": CUSTOM_FIELDS_PATTERN},
            {
                "type": "array",
                "items": {"type": "string", "pattern": CUSTOM_FIELD_PATTERN},
                "maxItems": exports.MAX_CUSTOM_FIELDS,
            },
        ],
        "nullable": True,
        "description": "Keys of your payments' custom_data to add as columns: 'a,b' or a list.",
    }
)
class CustomFieldsField(serializers.Field):
    default_error_messages = {
        "invalid": "Must be a comma-joined string or a list of strings: at most 20 names of "
        "at most 100 characters."
    }

    def to_internal_value(self, data):
        if isinstance(data, str):
            keys = data.split(",")
        elif isinstance(data, list) and all(isinstance(item, str) for item in data):
            keys = data
        else:
            self.fail("invalid")
        if len(keys) > exports.MAX_CUSTOM_FIELDS or not all(
            len(key) <= exports.MAX_CUSTOM_FIELD_LENGTH and "\x00" not in key for key in keys
        ):
            self.fail("invalid")
        return keys

    def to_representation(self, value):
        return value


class DataExportCreateSerializer(serializers.Serializer):
    type = serializers.ChoiceField(
        choices=list(exports.API_TYPES),
        help_text="payments; accounting (your ledger lines); accounting_for_payout (the lines "
        "a payout settles: give `payout`); Tranche also builds instalments and refunds.",
    )
    include_child_accounts = StrictBooleanField(
        required=False, help_text="Accepted for compatibility; Tranche has no child accounts."
    )
    payout = serializers.CharField(required=False, max_length=100, allow_null=True)
    start = StrictIntegerField(
        required=False,
        allow_null=True,
        min_value=0,
        max_value=MAX_TIMESTAMP,
        help_text="UNIX timestamp, included. Default: 30 days before `end`.",
    )
    end = StrictIntegerField(
        required=False,
        allow_null=True,
        min_value=0,
        max_value=MAX_TIMESTAMP,
        help_text="UNIX timestamp, included. Default: now.",
    )
    custom_fields = CustomFieldsField(required=False, allow_null=True)


class DataExportListQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(
        min_value=1, max_value=100, required=False, help_text="Default 5, at most 100."
    )
    starting_after = QueryTextField(
        max_length=100, help_text="The id of the last item of the previous page."
    )


class DataExportFileQuerySerializer(serializers.Serializer):
    format = serializers.ChoiceField(
        choices=list(exports.FORMATS), required=False, help_text="csv or xlsx: the file itself."
    )


class DataExportSerializer(serializers.Serializer):
    """Declared for the schema; ``export_to_json`` builds it."""

    id = serializers.CharField()
    type = serializers.CharField()
    start = serializers.IntegerField(allow_null=True)
    end = serializers.IntegerField(allow_null=True)
    include_child_accounts = serializers.BooleanField()
    merchant = serializers.CharField()
    payout = serializers.CharField(allow_null=True)
    custom_fields = serializers.ListField(child=serializers.CharField())
    complete = serializers.BooleanField()
    status = serializers.CharField(help_text="pending, running, done or failed.")
    error = serializers.CharField(allow_null=True)
    rows_total = serializers.IntegerField(allow_null=True)
    rows_done = serializers.IntegerField()
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    url_csv = serializers.URLField(allow_null=True)
    url_xlsx = serializers.URLField(allow_null=True)
    url_pdf = serializers.URLField(allow_null=True)
    url_xml = serializers.URLField(allow_null=True)
    url_zip = serializers.URLField(allow_null=True)
    csv_url = serializers.URLField(allow_null=True)
    xlsx_url = serializers.URLField(allow_null=True)
    pdf_url = serializers.URLField(allow_null=True)
    xml_url = serializers.URLField(allow_null=True)
    zip_url = serializers.URLField(allow_null=True)


class DataExportPageSerializer(serializers.Serializer):
    data = DataExportSerializer(many=True)
    has_more = serializers.BooleanField()


def _moment(timestamp: int | None) -> datetime | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, tz=UTC)


def _ts(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp())


def export_to_json(export: DataExport, *, request) -> dict:
    """An export as the API shows it; file URLs once its files are ready."""
    path = reverse("api-data-export", kwargs={"export_id": export.public_id})
    urls: dict[str, str | None] = dict.fromkeys(FILE_KEYS)
    if export.complete:
        for file_format in exports.FORMATS:
            urls[file_format] = request.build_absolute_uri(f"{path}?format={file_format}")
    body = {
        "id": export.public_id,
        "type": export.api_type or export.kind,
        "start": _ts(export.start),
        "end": _ts(export.end),
        "include_child_accounts": export.include_child_accounts,
        "merchant": export.merchant.public_id,
        "payout": export.payout.public_id if export.payout_id else None,
        "custom_fields": list(export.custom_fields or []),
        "complete": export.complete,
        "status": export.status,
        "error": export.error or None,
        "rows_total": export.rows_total,
        "rows_done": export.rows_done,
        "created": _ts(export.created_at),
        "updated": _ts(export.updated_at),
    }
    for key in FILE_KEYS:
        body[f"url_{key}"] = urls[key]
    for key in FILE_KEYS:
        body[f"{key}_url"] = urls[key]
    return body


class JSONWhateverTheFormat(DefaultContentNegotiation):
    """The API answers JSON; ``?format=`` names an export's file here, not a renderer."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class ExportsAPIView(MerchantAPIView):
    content_negotiation_class = JSONWhateverTheFormat

    @property
    def scope(self) -> dict:
        return {"merchant": self.merchant, "livemode": self.request.auth.livemode}


class DataExportsView(ExportsAPIView):
    @extend_schema(
        operation_id="data_exports_create",
        request=DataExportCreateSerializer,
        responses={
            200: DataExportSerializer,
            403: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="The merchant account is pending or suspended, or the export "
                "cannot be made as asked (`export_refused`: a period reversed or longer than "
                "366 days, a payout missing or given with another type); `errors` names the "
                "field.",
            ),
            404: OpenApiResponse(OpenApiTypes.OBJECT, description="Unknown payout."),
        },
        tags=EXPORTS,
        examples=[
            OpenApiExample(
                "Payments of October",
                value={
                    "type": "payments",
                    "start": 1790805600,
                    "end": 1793487599,
                    "custom_fields": "cart_id",
                },
                request_only=True,
            )
        ],
    )
    def post(self, request):
        """Ask for an export of a period (at most 366 days; default the last 30 days). Its
        files are built in the background: fetch it until `complete` is true, then download
        them at `url_csv` / `url_xlsx` (also spelled `csv_url` / `xlsx_url`)."""
        data = validated(DataExportCreateSerializer, request.data)
        now = timezone.now()
        api_type = data["type"]
        payout = None
        if api_type == "accounting_for_payout":
            if not data.get("payout"):
                raise exports.ExportRefused(
                    "payout",
                    "An accounting_for_payout export needs a payout.",
                    error_code="missing_field",
                )
            payout = exports.payout_for_export(**self.scope, payout_id=data["payout"])
        elif data.get("payout"):
            raise exports.ExportRefused(
                "payout",
                "A payout goes with an accounting_for_payout export.",
                error_code="incompatible_parameters",
            )
        end = _moment(data.get("end")) or now
        start = _moment(data.get("start")) or end - exports.DEFAULT_PERIOD
        export = exports.export_request(
            **self.scope,
            kind=exports.API_TYPES[api_type],
            api_type=api_type,
            start=start,
            end=end,
            payout=payout,
            custom_fields=exports.parse_custom_fields(data.get("custom_fields")),
            include_child_accounts=bool(data.get("include_child_accounts")),
            origin=DataExport.Origin.API,
            now=now,
        )
        return Response(export_to_json(export, request=request))

    @extend_schema(
        operation_id="data_exports_list",
        parameters=[DataExportListQuerySerializer],
        responses=DataExportPageSerializer,
        tags=EXPORTS,
    )
    def get(self, request):
        """Your exports in the key's mode, newest first (5 a page by default)."""
        query = validated(DataExportListQuerySerializer, request.query_params)
        page = exports.exports_page(
            **self.scope,
            limit=query.get("limit", DEFAULT_LIMIT),
            starting_after=query.get("starting_after"),
        )
        return Response(
            {
                "data": [export_to_json(e, request=request) for e in page.items],
                "has_more": page.has_more,
            }
        )


class DataExportView(ExportsAPIView):
    @extend_schema(
        operation_id="data_exports_fetch",
        parameters=[
            OpenApiParameter(
                "format",
                OpenApiTypes.STR,
                enum=list(exports.FORMATS),
                description="csv or xlsx: answer the file itself (409 until it is complete).",
            )
        ],
        responses={
            (200, "application/json"): DataExportSerializer,
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.BINARY, description="The CSV file."),
            (200, exports.CONTENT_TYPES["xlsx"]): OpenApiResponse(
                OpenApiTypes.BINARY, description="The XLSX file."
            ),
            409: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="`export_not_ready`: the file was asked for before the export "
                "is complete.",
            ),
        },
        tags=EXPORTS,
    )
    def get(self, request, export_id: str):
        """One export; with `?format=csv|xlsx`, its file."""
        query = validated(DataExportFileQuerySerializer, request.query_params)
        export = exports.export_get(**self.scope, export_id=export_id)
        file_format = query.get("format")
        if not file_format:
            return Response(export_to_json(export, request=request))
        handle = exports.export_open(export=export, file_format=file_format)
        return FileResponse(
            handle,
            as_attachment=True,
            filename=exports.download_name(export, file_format),
            content_type=exports.CONTENT_TYPES[file_format],
        )
