"""Public pages of the payments app: the demo shop that shows the embeddable widget."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.http import HttpRequest, HttpResponse
from django.http.request import validate_host
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_safe

from apps.common.ids import is_well_formed
from apps.common.money import display_eur
from apps.merchants import selectors as merchant_selectors

PRODUCT_PLANS = "1,3,4,10,1+30d"
CART_PLANS = "3,4,10"


@dataclass(frozen=True)
class DemoArticle:
    """A line of the fake shop's catalogue; prices in integer cents, like the API."""

    key: str
    name: str
    unit_price: int
    quantity: int = 1


LAMP_VARIANTS = [
    DemoArticle("small", _("Small, 35 cm"), 45_000),
    DemoArticle("medium", _("Medium, 50 cm"), 52_000),
    DemoArticle("large", _("Large, 80 cm"), 129_000),
]
CART_LINES = [
    DemoArticle("lamp", _("Brass arc lamp, medium"), 52_000, 1),
    DemoArticle("shade", _("Linen lampshade"), 8_900, 2),
    DemoArticle("bulb", _("LED filament bulb"), 1_250, 3),
]

_http_url = URLValidator(schemes=["http", "https"])


def _api_root(value: str) -> str:
    """Another address of this very server to call the API at (e.g. 127.0.0.1 when the page
    is served as localhost, to see the widget work cross-origin), or ''. Only hosts this
    server answers to: the page must never show plans computed elsewhere."""
    value = value.strip().rstrip("/")
    try:
        _http_url(value)
    except ValidationError:
        return ""
    parts = urlsplit(value)
    if parts.query or parts.fragment or parts.username:
        return ""
    return value if validate_host(parts.hostname or "", settings.ALLOWED_HOSTS) else ""


def _priced(article: DemoArticle) -> dict:
    return {
        "article": article,
        "unit_price": display_eur(article.unit_price),
        "line_total": article.unit_price * article.quantity,
        "line_total_display": display_eur(article.unit_price * article.quantity),
    }


def _render_demo(request: HttpRequest, template: str, page: str) -> HttpResponse:
    requested_id = request.GET.get("merchant", "").strip()
    api_root = _api_root(request.GET.get("api_root", ""))

    if requested_id:
        merchant = (
            merchant_selectors.merchant_by_public_id(requested_id)
            if is_well_formed("merchant", requested_id)
            else None
        )
    else:
        merchant = merchant_selectors.merchant_first_active()

    if merchant is None or not merchant.is_active:
        return render(
            request,
            "payments/widget_demo_unavailable.html",
            {"requested_id": requested_id, "page": page},
            status=404 if requested_id else 200,
        )
    carried = {"merchant": requested_id, "api_root": api_root}
    cart = [_priced(line) for line in CART_LINES]
    cart_total = sum(line["line_total"] for line in cart)
    return render(
        request,
        template,
        {
            "page": page,
            "merchant": merchant,
            "api_root": api_root,
            "demo_query": urlencode({key: value for key, value in carried.items() if value}),
            "variants": [_priced(variant) for variant in LAMP_VARIANTS],
            "default_variant": LAMP_VARIANTS[0],
            "default_price": display_eur(LAMP_VARIANTS[0].unit_price),
            "product_plans": PRODUCT_PLANS,
            "cart": cart,
            "cart_total": cart_total,
            "cart_total_display": display_eur(cart_total),
            "cart_plans": CART_PLANS,
        },
    )


@require_safe
def widget_demo(request: HttpRequest) -> HttpResponse:
    """A product page of a fake shop with the widget under the price."""
    return _render_demo(request, "payments/widget_demo.html", "product")


@require_safe
def widget_demo_cart(request: HttpRequest) -> HttpResponse:
    """The fake shop's cart, with the widget under the total."""
    return _render_demo(request, "payments/widget_demo_cart.html", "cart")
