"""Create or refresh the demo merchant that `make run` prints (idempotent).

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
from apps.merchants.models import Membership, Merchant
from apps.merchants.selectors import api_key_for_secret

DEMO_IBAN = "FR7630006000011234567890189"
DEMO_EMAIL = "demo@tranche.localhost"
DEMO_NAME = "Boutique Démo"
CREDENTIALS_FILE = settings.VAR_DIR / "demo_credentials.json"


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
                    f"  Outbox:          {base}/dev/outbox (SMS and emails, codes included)",
                    "",
                ]
            )
        )

    def add_arguments(self, parser):
        parser.add_argument("--port", default=None, help="port shown in the printed URLs")
