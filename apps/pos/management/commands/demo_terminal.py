"""Give the demo merchant a test-mode terminal and print the simulated terminal's link
(idempotent; run by `make run` after demo_merchant).

The terminal's secret lives in var/demo_terminal.json (mode 600, outside the database, which
only holds its hash), so each run prints the same working link.
"""

import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from apps.merchants.models import Merchant
from apps.pos import services

CREDENTIALS_FILE = settings.VAR_DIR / "demo_terminal.json"
DEMO_EMAIL = "demo@tranche.localhost"


class Command(BaseCommand):
    help = "Register (once) a test terminal for the demo merchant and print the simulator link."

    def add_arguments(self, parser):
        parser.add_argument("--port", default=None, help="port shown in the printed URLs")

    def handle(self, *args, **options):
        now = timezone.now()
        merchant = Merchant.objects.filter(memberships__user__username=DEMO_EMAIL).first()
        if merchant is None:
            raise CommandError("No demo merchant: run `manage.py demo_merchant` first.")
        try:
            secret = json.loads(CREDENTIALS_FILE.read_text()).get("secret", "")
        except (OSError, ValueError):
            secret = ""
        terminal = services.terminal_for_secret(secret) if secret else None
        if terminal is None or terminal.is_revoked or terminal.merchant_id != merchant.pk:
            issued = services.terminal_register(
                merchant=merchant, livemode=False, name="Caisse démo", shop="Boutique", now=now
            )
            secret = issued.secret
            CREDENTIALS_FILE.parent.mkdir(exist_ok=True)
            CREDENTIALS_FILE.write_text(json.dumps({"secret": secret}))
            CREDENTIALS_FILE.chmod(0o600)
        base = f"http://127.0.0.1:{options.get('port') or '8000'}"
        self.stdout.write(
            "\n".join(
                [
                    f"  In store:        {base}/dashboard/terminal/ (virtual terminal)",
                    " " * 19 + f"{base}/pos/simulator/#secret={secret} (simulated terminal)",
                    "",
                ]
            )
        )
