"""Creating an account with a mobile number (a code by SMS), and the customer's profile."""

from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from apps.common.errors import DomainError
from apps.schedules.portal import signin, signup
from apps.schedules.portal.session import customer_required, portal_customer, portal_sign_in
from apps.schedules.portal.views.auth import TEST_MODE, CodeForm, client_ip
from apps.verification.phones import phone_mask

SIGN_UP_KEY = "portal_sign_up_id"
# The email check (a code sent to the new email typed in the profile) this browser started.
EMAIL_CHECK_KEY = "portal_email_check_id"


class SignUpForm(forms.Form):
    phone = forms.CharField(label=_("Your mobile number"), max_length=40)


class ProfileForm(forms.Form):
    first_name = forms.CharField(label=_("First name"), max_length=100)
    last_name = forms.CharField(label=_("Last name"), max_length=100)
    birth_date = forms.DateField(
        label=_("Birth date"),
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date", "autocomplete": "bday"}, format="%Y-%m-%d"),
        error_messages={"invalid": _("Enter the date as YYYY-MM-DD.")},
    )
    email = forms.EmailField(
        label=_("Email"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autocapitalize": "none"}),
    )
    line1 = forms.CharField(
        label=_("Address"),
        max_length=200,
        widget=forms.TextInput(attrs={"autocomplete": "address-line1"}),
    )
    line2 = forms.CharField(
        label=_("Address (continued)"),
        max_length=200,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "address-line2"}),
    )
    postal_code = forms.CharField(
        label=_("Postal code"),
        max_length=12,
        widget=forms.TextInput(attrs={"autocomplete": "postal-code"}),
    )
    city = forms.CharField(
        label=_("City"),
        max_length=100,
        widget=forms.TextInput(attrs={"autocomplete": "address-level2"}),
    )
    country = forms.ChoiceField(
        label=_("Country"), widget=forms.Select(attrs={"autocomplete": "country"})
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["country"].choices = signup.country_choices(get_language())
        self.fields["first_name"].widget.attrs["autocomplete"] = "given-name"
        self.fields["last_name"].widget.attrs["autocomplete"] = "family-name"


def _mode_query(livemode: bool) -> str:
    return "" if livemode else "?" + urlencode({"mode": TEST_MODE})


@never_cache
@require_http_methods(["GET", "POST"])
def sign_up(request: HttpRequest) -> HttpResponse:
    data = request.POST if request.method == "POST" else request.GET
    test_mode = data.get("mode") == TEST_MODE
    request.customer = portal_customer(request)
    form = SignUpForm(request.POST if request.method == "POST" else None)
    error, status = "", 200
    if form.is_valid():
        try:
            row = signup.sign_up_start(
                phone=form.cleaned_data["phone"],
                livemode=not test_mode,
                language=get_language(),
                now=timezone.now(),
                ip_address=client_ip(request),
            )
        except DomainError as exc:
            error, status = exc.message, exc.http_status
        else:
            request.session[SIGN_UP_KEY] = row.public_id
            return redirect("portal:sign-up-code")
    elif form.is_bound:
        status = 400
    return render(
        request,
        "portal/sign_up.html",
        {
            "form": form,
            "error": error,
            "test_mode": test_mode,
            "mode": TEST_MODE if test_mode else "",
            "sign_in_url": reverse("portal:sign-in") + _mode_query(not test_mode),
        },
        status=status,
    )


@never_cache
@require_http_methods(["GET", "POST"])
def sign_up_code(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    request.customer = portal_customer(request)
    try:
        row = signup.sign_up_get(sign_in_id=request.session.get(SIGN_UP_KEY, ""))
    except signin.SignInNotFound:
        return redirect("portal:sign-up")
    action = request.POST.get("action", "verify") if request.method == "POST" else ""
    form = CodeForm(request.POST if action == "verify" else None)
    error, status, finished = "", 200, False
    if action == "resend":
        try:
            row = signup.sign_up_resend(
                sign_in_id=row.public_id,
                language=get_language(),
                now=now,
                ip_address=client_ip(request),
            )
        except DomainError as exc:
            error, status = exc.message, exc.http_status
        else:
            request.session[SIGN_UP_KEY] = row.public_id
            messages.info(request, _("We sent a new code."))
            return redirect("portal:sign-up-code")
    elif form.is_valid():
        try:
            customer = signup.sign_up_verify(
                sign_in_id=row.public_id,
                code=form.cleaned_data["code"],
                now=now,
                ip_address=client_ip(request),
            )
        except DomainError as exc:
            error, status = exc.message, exc.http_status
            finished = isinstance(
                exc, signin.SignInLocked | signin.SignInCodeExpired | signin.SignInCodeUsed
            )
        else:
            portal_sign_in(request, customer, now=now)
            request.session.pop(SIGN_UP_KEY, None)
            return redirect("portal:profile")
    elif form.is_bound:
        status = 400
    resend_at = row.created_at + signin.RESEND_AFTER
    return render(
        request,
        "portal/sign_up_code.html",
        {
            "form": form,
            "error": error,
            "finished": finished,
            "destination": signin.destination_mask(row.channel, row.destination),
            "minutes": settings.PORTAL_CODE_TTL_MINUTES,
            "test_mode": not row.livemode,
            "test_code": row.test_code if not row.livemode else "",
            "resend_in": int((resend_at - now).total_seconds()) + 1 if resend_at > now else 0,
            "restart_url": reverse("portal:sign-up") + _mode_query(row.livemode),
        },
        status=status,
    )


def _pending_email_check(request: HttpRequest):
    """The email check this browser started for the signed-in customer and not finished,
    or None."""
    try:
        row = signup.email_check_get(
            customer=request.customer, check_id=request.session.get(EMAIL_CHECK_KEY, "")
        )
    except signin.SignInNotFound:
        return None
    return row if row.verified_at is None else None


@never_cache
@customer_required
@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    customer = request.customer
    address = customer.address or {}
    pending = _pending_email_check(request)
    initial = {
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "birth_date": customer.birth_date,
        "email": pending.destination if pending is not None else customer.email,
        "line1": address.get("line1", ""),
        "line2": address.get("line2", ""),
        "postal_code": address.get("postal_code", ""),
        "city": address.get("city", ""),
        "country": address.get("country") or signup.DEFAULT_COUNTRY,
    }
    form = ProfileForm(request.POST if request.method == "POST" else None, initial=initial)
    error, status = "", 200
    if form.is_valid():
        data = form.cleaned_data
        now = timezone.now()
        try:
            customer = signup.profile_update(
                customer=customer,
                profile=signup.Profile(
                    first_name=data["first_name"],
                    last_name=data["last_name"],
                    birth_date=data["birth_date"],
                    email=data["email"],
                    line1=data["line1"],
                    line2=data["line2"],
                    postal_code=data["postal_code"],
                    city=data["city"],
                    country=data["country"],
                ),
                now=now,
            )
            new_email = signup.email_to_confirm(customer=customer, email=data["email"])
            row = None
            if new_email:
                row = signup.email_check_start(
                    customer=customer,
                    email=new_email,
                    language=get_language(),
                    now=now,
                    ip_address=client_ip(request),
                )
        except signup.ProfileInvalid as exc:
            for field, message in exc.errors.items():
                form.add_error(field, message)
            status = 400
        except DomainError as exc:
            # The profile is saved; the code for the new email could not be sent (limits).
            error, status = exc.message, exc.http_status
        else:
            if row is None:
                request.session.pop(EMAIL_CHECK_KEY, None)
                messages.success(request, _("Your profile is saved."))
                return redirect("issuing:card")
            request.session[EMAIL_CHECK_KEY] = row.public_id
            messages.success(request, _("Your profile is saved. Now confirm your email."))
            return redirect("portal:profile-email")
    elif form.is_bound:
        status = 400
    return render(
        request,
        "portal/profile.html",
        {
            "form": form,
            "error": error,
            "pending_email": pending.destination if pending is not None else "",
            "phone": phone_mask(customer.phone) if customer.phone else "",
        },
        status=status,
    )


@never_cache
@customer_required
@require_http_methods(["GET", "POST"])
def profile_email(request: HttpRequest) -> HttpResponse:
    """The code sent to the new email typed in the profile: the email is saved once the
    right code is typed. Says the same whether or not the email belongs to someone else."""
    now = timezone.now()
    customer = request.customer
    try:
        row = signup.email_check_get(
            customer=customer, check_id=request.session.get(EMAIL_CHECK_KEY, "")
        )
    except signin.SignInNotFound:
        return redirect("portal:profile")
    action = request.POST.get("action", "verify") if request.method == "POST" else ""
    form = CodeForm(request.POST if action == "verify" else None)
    error, status, finished = "", 200, False
    if action == "resend":
        try:
            row = signup.email_check_resend(
                customer=customer,
                check_id=row.public_id,
                language=get_language(),
                now=now,
                ip_address=client_ip(request),
            )
        except DomainError as exc:
            error, status = exc.message, exc.http_status
        else:
            request.session[EMAIL_CHECK_KEY] = row.public_id
            messages.info(request, _("We sent a new code."))
            return redirect("portal:profile-email")
    elif form.is_valid():
        try:
            signup.email_check_verify(
                customer=customer,
                check_id=row.public_id,
                code=form.cleaned_data["code"],
                now=now,
                ip_address=client_ip(request),
            )
        except DomainError as exc:
            error, status = exc.message, exc.http_status
            finished = isinstance(
                exc, signin.SignInLocked | signin.SignInCodeExpired | signin.SignInCodeUsed
            )
        else:
            request.session.pop(EMAIL_CHECK_KEY, None)
            messages.success(request, _("Your email is confirmed."))
            return redirect("issuing:card")
    elif form.is_bound:
        status = 400
    resend_at = row.created_at + signin.RESEND_AFTER
    return render(
        request,
        "portal/profile_email.html",
        {
            "form": form,
            "error": error,
            "finished": finished,
            "destination": signin.destination_mask(row.channel, row.destination),
            "minutes": settings.PORTAL_CODE_TTL_MINUTES,
            "test_code": row.test_code if not row.livemode else "",
            "resend_in": int((resend_at - now).total_seconds()) + 1 if resend_at > now else 0,
        },
        status=status,
    )
