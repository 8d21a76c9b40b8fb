from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class PaymentsConfig(AppConfig):
    name = "apps.payments"
    label = "payments"
    verbose_name = _("Payments")

    def ready(self) -> None:
        from apps.payments.reference_data import install_shipped_usury_rates

        post_migrate.connect(install_shipped_usury_rates, sender=self)
