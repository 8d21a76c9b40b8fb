from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MerchantsConfig(AppConfig):
    name = "apps.merchants"
    label = "merchants"
    verbose_name = _("Merchants")

    def ready(self) -> None:
        from apps.merchants.api import schema  # noqa: F401  (registers the auth scheme)
