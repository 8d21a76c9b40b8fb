"""Operator CLI: create a merchant with its owner login and a test and a live key."""

import json
import secrets

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from apps.common.errors import DomainError
from apps.merchants import services
from apps.merchants.fee_plan_specs import load_fee_plan_specs
from apps.merchants.models import Country, Membership


class Command(BaseCommand):
    help = "Create a merchant, its owner's dashboard login, and a test and a live secret key."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="legal name")
        parser.add_argument("--email", required=True, help="owner's email (dashboard login)")
        parser.add_argument("--country", required=True, help="two-letter code, e.g. FR")
        parser.add_argument("--website", default="")
        parser.add_argument("--store-only", action="store_true", help="sells in store only")
        parser.add_argument("--activate", action="store_true", help="activate at once")
        parser.add_argument("--fee-plans", metavar="FILE.json", help="fee plans in API shape")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, **options):
        country = options["country"].upper()
        if country not in Country.values:
            raise CommandError(
                f"--country must be one of {', '.join(Country.values)}, not {country!r}"
            )
        now = timezone.now()
        password = secrets.token_urlsafe(12)
        try:
            specs = load_fee_plan_specs(options["fee_plans"]) if options["fee_plans"] else None
            with transaction.atomic():
                user = services.user_create(email=options["email"], password=password)
                merchant = services.merchant_create(
                    legal_name=options["name"],
                    country=country,
                    contact_email=user.email,
                    website=options["website"],
                    store_only=options["store_only"],
                    now=now,
                )
                services.membership_add(
                    merchant=merchant, user=user, role=Membership.Role.OWNER, now=now
                )
                if specs is not None:
                    services.fee_plans_replace(merchant=merchant, specs=specs)
                if options["activate"]:
                    merchant = services.merchant_activate(merchant=merchant, now=now)
                test_key = services.api_key_create(merchant=merchant, livemode=False, now=now)
                live_key = services.api_key_create(merchant=merchant, livemode=True, now=now)
        except DomainError as error:
            raise CommandError(error.message) from error

        result = {
            "merchant_id": merchant.public_id,
            "name": merchant.legal_name,
            "state": merchant.status,
            "login": user.email,
            "password": password,
            "test_secret_key": test_key.secret,
            "live_secret_key": live_key.secret,
            "fee_plans": merchant.fee_plans.count(),
        }
        if options["json"]:
            self.stdout.write(json.dumps(result))
        else:
            for label, value in result.items():
                self.stdout.write(f"{label:>16}: {value}")
