"""django-q2 entry points of the common kernel: thin, idempotent, safe to run twice."""

from django.utils import timezone

from apps.common.idempotency import idempotency_prune


def prune_idempotency_records() -> int:
    return idempotency_prune(now=timezone.now())
