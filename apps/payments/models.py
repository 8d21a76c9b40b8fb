from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from djmoney.models.fields import MoneyField

MONEY = {"max_digits": 14, "decimal_places": 2, "default_currency": "EUR"}
QUARTER_FIRST_MONTHS = [1, 4, 7, 10]


class UsuryRate(models.Model):
    """One band of a quarter's usury table (taux d'usure), as the Banque de France publishes
    it each quarter for consumer credit: credits up to `max_credit_amount` (empty: the band
    above the others) may not cost more than `rate_bps` APR. Operators add each new quarter
    in the admin; regulation.usury_cap_bps reads the latest quarter in force."""

    effective_from = models.DateField(_("in force from"), help_text=_("First day of a quarter."))
    max_credit_amount = MoneyField(
        _("credit amount up to"),
        null=True,
        blank=True,
        help_text=_("Leave empty for the band above the others."),
        **MONEY,
    )
    rate_bps = models.PositiveIntegerField(
        _("usury rate (bps)"), help_text=_("Basis points: 2356 is 23.56 %.")
    )
    source = models.CharField(_("source"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("usury rate")
        verbose_name_plural = _("usury rates")
        ordering = ["-effective_from", "max_credit_amount"]
        constraints = [
            models.UniqueConstraint(
                fields=["effective_from", "max_credit_amount"],
                nulls_distinct=False,
                name="usury_rate_one_per_band",
            ),
            models.CheckConstraint(
                condition=Q(effective_from__day=1, effective_from__month__in=QUARTER_FIRST_MONTHS),
                name="usury_rate_starts_a_quarter",
            ),
            models.CheckConstraint(
                condition=Q(rate_bps__gt=0, rate_bps__lte=100_000), name="usury_rate_bounds"
            ),
            models.CheckConstraint(
                condition=Q(max_credit_amount__isnull=True) | Q(max_credit_amount__gt=0),
                name="usury_rate_band_positive",
            ),
        ]

    def __str__(self) -> str:
        band = self.max_credit_amount or _("above")
        return f"{self.effective_from:%Y-%m-%d} {band}: {self.rate_bps} bps"
