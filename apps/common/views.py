"""Developer pages of the common kernel: the outbox of emails and SMS."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404
from django.shortcuts import render
from django.template import TemplateDoesNotExist, TemplateSyntaxError
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from apps.common import selectors
from apps.common.emails import email_content
from apps.common.models import OutgoingEmail
from apps.verification import selectors as verification_selectors


def _check_access(request) -> None:
    """Outside development only staff see these pages; to everybody else they do not exist."""
    if not (settings.DEBUG or request.user.is_staff):
        raise Http404


@never_cache
@require_GET
def dev_outbox(request):
    """The latest emails and SMS, as the sandbox providers would have delivered them."""
    _check_access(request)
    return render(
        request,
        "common/dev_outbox.html",
        {
            "emails": selectors.outgoing_emails_latest(),
            "sms_messages": verification_selectors.sms_messages_latest(),
        },
    )


@never_cache
@require_GET
def dev_outbox_email(request, email_id: int):
    """One email: its text and its HTML (as sent, or rendered now if not sent yet)."""
    _check_access(request)
    try:
        email = selectors.outgoing_email_get(email_id=email_id)
    except OutgoingEmail.DoesNotExist:
        raise Http404 from None
    text, html, render_error = "", "", ""
    try:
        text, html = email_content(email)
    except (TemplateDoesNotExist, TemplateSyntaxError) as error:  # a page to debug with
        render_error = f"{type(error).__name__}: {error}"
    return render(
        request,
        "common/dev_outbox_email.html",
        {"email": email, "text": text, "html": html, "render_error": render_error},
    )
