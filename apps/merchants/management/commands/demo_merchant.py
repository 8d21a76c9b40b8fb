"""Create or refresh the demo merchant that `make run` prints (idempotent), and a handful
of listed partner shops so the portal's partner directory is not empty.

Its password and test key live in var/demo_credentials.json (mode 600, outside the
database, which only holds hashes), so each run prints the same working credentials.
"""

import json
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from apps.merchants import services
from apps.merchants.fee_plan_specs import parse_fee_plan_specs
from apps.merchants.models import Membership, Merchant
from apps.merchants.selectors import api_key_for_secret

DEMO_IBAN = "FR7630006000011234567890189"
DEMO_EMAIL = "demo@tranche.localhost"
DEMO_NAME = "Boutique Démo"
CREDENTIALS_FILE = settings.VAR_DIR / "demo_credentials.json"
DEMO_CATEGORY = Merchant.Category.FASHION
# Partner shops of the directory: (name, category, website, store only, plans as
# (kind, instalments, deferred days)). Fictional shops, on the reserved .example domain.
DEMO_PARTNERS = [
    (
        "Maison Lumière",
        Merchant.Category.HOME,
        "https://maison-lumiere.example",
        False,
        [("general", 3, 0), ("general", 4, 0), ("pos", 3, 0), ("pos", 4, 0)],
    ),
    (
        "Électro Marché",
        Merchant.Category.ELECTRONICS,
        "https://electro-marche.example",
        False,
        [("general", 2, 0), ("general", 3, 0), ("general", 4, 0), ("general", 10, 0)],
    ),
    (
        "Cycles Dupuis",
        Merchant.Category.SPORTS,
        "https://cycles-dupuis.example",
        True,
        [("pos", 3, 0), ("pos", 4, 0), ("pos", 1, 30)],
    ),
    (
        "Les Petits Explorateurs",
        Merchant.Category.CHILDREN,
        "https://petits-explorateurs.example",
        False,
        [("general", 3, 0), ("general", 1, 30)],
    ),
    (
        "Beauté des Îles",
        Merchant.Category.BEAUTY,
        "https://beaute-des-iles.example",
        False,
        [("general", 2, 0), ("general", 3, 0), ("pos", 3, 0)],
    ),
    (
        "Voyages Horizon",
        Merchant.Category.TRAVEL,
        "https://voyages-horizon.example",
        False,
        [("general", 3, 0), ("general", 4, 0), ("general", 1, 30)],
    ),
    (
        "Garage du Centre",
        Merchant.Category.AUTO,
        "https://garage-du-centre.example",
        True,
        [("pos", 3, 0), ("pos", 4, 0), ("pos", 10, 0)],
    ),
]


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


class Command(BaseCommand):
    help = "Create or refresh the demo merchant and print its dashboard login and test key."

    def handle(self, *args, **options):
        now = timezone.now()
        credentials = _read(CREDENTIALS_FILE)
        password = credentials.get("password") or secrets.token_urlsafe(12)
        with transaction.atomic():
            user, _ = get_user_model().objects.get_or_create(
                username=DEMO_EMAIL,
                defaults={"email": DEMO_EMAIL, "first_name": "Demo", "last_name": "Tranche"},
            )
            user.set_password(password)
            user.is_staff = user.is_superuser = True  # the demo login is also the local operator
            user.save()
            membership = Membership.objects.select_related("merchant").filter(user=user).first()
            if membership is None:
                merchant = services.merchant_create(
                    legal_name=DEMO_NAME,
                    country="FR",
                    contact_email=DEMO_EMAIL,
                    website="https://boutique-demo.example",
                    now=now,
                )
                services.membership_add(
                    merchant=merchant, user=user, role=Membership.Role.OWNER, now=now
                )
            else:
                merchant = membership.merchant
            if merchant.status != Merchant.Status.ACTIVE:
                merchant = services.merchant_activate(merchant=merchant, now=now)
            if not merchant.payout_iban:  # a sample account, so test-mode payouts run
                merchant = services.merchant_payout_details_update(
                    merchant=merchant, iban=DEMO_IBAN, bic="", now=now
                )
            if not merchant.category:  # the merchant's own choice in the dashboard stays
                merchant = _directory_set(merchant, category=DEMO_CATEGORY, now=now)
            for partner in DEMO_PARTNERS:
                _partner(*partner, now=now)
            secret = credentials.get("test_secret_key", "")
            key = api_key_for_secret(secret, now=now) if secret else None
            if key is None or key.merchant_id != merchant.pk:
                secret = services.api_key_create(merchant=merchant, livemode=False, now=now).secret
        CREDENTIALS_FILE.parent.mkdir(exist_ok=True)
        CREDENTIALS_FILE.write_text(json.dumps({"password": password, "test_secret_key": secret}))
        CREDENTIALS_FILE.chmod(0o600)

        port = options.get("port") or "8000"
        base = f"http://127.0.0.1:{port}"
        self.stdout.write(
            "\n".join(
                [
                    "",
                    f"  Tranche demo merchant: {merchant.legal_name} ({merchant.public_id})",
                    f"  Dashboard:       {base}/dashboard/",
                    f"  Login:           {DEMO_EMAIL}",
                    f"  Password:        {password}",
                    f"  Test secret key: {secret}",
                    f"  Try:             curl -H 'Authorization: Alma-Auth {secret}' {base}/v1/me",
                    f"  API docs:        {base}/docs   Operations: {base}/admin/",
                    f"  Customer portal: {base}/portal/sign-in?mode=test",
                    f"  Sign up (test):  {base}/portal/sign-up?mode=test",
                    f"  Partner shops:   {base}/portal/partners",
                    f"  Outbox:          {base}/dev/outbox (SMS and emails, codes included)",
                    "",
                ]
            )
        )

    def add_arguments(self, parser):
        parser.add_argument("--port", default=None, help="port shown in the printed URLs")


def _directory_set(merchant: Merchant, *, category: str, now) -> Merchant:
    """List ``merchant`` in the partner directory under ``category`` (its other settings as
    they are)."""
    return services.merchant_settings_update(
        merchant=merchant,
        return_url=merchant.return_url,
        customer_cancel_url=merchant.customer_cancel_url,
        ipn_callback_url=merchant.ipn_callback_url,
        excluded_categories=merchant.excluded_categories,
        authorisation_policy=merchant.authorisation_policy,
        category=category,
        listed_in_directory=True,
        now=now,
    )


def _partner(
    name: str, category: str, website: str, store_only: bool, plans: list, *, now
) -> Merchant:
    """A demo partner shop, created once (active, with its test fee plans) and kept listed."""
    slug = website.removeprefix("https://").split(".")[0]
    contact_email = f"{slug}@partners.tranche.localhost"
    merchant = Merchant.objects.filter(contact_email=contact_email).order_by("pk").first()
    if merchant is None:
        merchant = services.merchant_create(
            legal_name=name,
            country="FR",
            contact_email=contact_email,
            website=website,
            store_only=store_only,
            now=now,
        )
        merchant = services.merchant_activate(merchant=merchant, now=now)
        services.fee_plans_replace(
            merchant=merchant,
            specs=parse_fee_plan_specs(
                [
                    {"kind": kind, "installments_count": count, "deferred_days": days}
                    for kind, count, days in plans
                ]
            ),
        )
    elif merchant.status != Merchant.Status.ACTIVE:
        merchant = services.merchant_activate(merchant=merchant, now=now)
    if merchant.category != category or not merchant.listed_in_directory:
        merchant = _directory_set(merchant, category=category, now=now)
    return merchant
