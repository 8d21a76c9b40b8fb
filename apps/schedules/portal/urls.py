from django.urls import path

from apps.schedules.portal.views import (
    auth,
    card,
    data,
    help,
    partners,
    pay,
    plans,
    postpone,
    signup,
)

app_name = "portal"

PLAN = "portal/plans/<str:payment_id>"

urlpatterns = [
    # Signing in: a one-time code, or a signed link from an email.
    path("portal/sign-in", auth.sign_in, name="sign-in"),
    path("portal/sign-in/code", auth.sign_in_code, name="sign-in-code"),
    path("portal/sign-out", auth.sign_out, name="sign-out"),
    path("portal/link/<str:token>", auth.link, name="link"),
    # Creating an account with a mobile number, and the profile the card needs.
    path("portal/sign-up", signup.sign_up, name="sign-up"),
    path("portal/sign-up/code", signup.sign_up_code, name="sign-up-code"),
    path("portal/profile", signup.profile, name="profile"),
    path("portal/profile/email", signup.profile_email, name="profile-email"),
    # Plans and receipts.
    path("portal/", plans.plans, name="plans"),
    path(PLAN, plans.plan, name="plan"),
    path(f"{PLAN}/receipts/<str:number>.pdf", plans.receipt, name="receipt"),
    path("portal/receipts", plans.receipts, name="receipts"),
    # Actions on a plan.
    path(f"{PLAN}/pay", pay.pay_early, name="pay"),
    path(f"{PLAN}/instalments/<int:number>/postpone", postpone.postpone, name="postpone"),
    path(f"{PLAN}/instalments/<int:number>/longer", postpone.longer_delay, name="longer-delay"),
    path(f"{PLAN}/card", card.change_card, name="card"),
    path("portal/cards/<str:setup_id>/3ds", card.three_ds_return, name="card-3ds"),
    # Data rights.
    path("portal/data", data.data_rights, name="data"),
    path("portal/data/export.json", data.export_json, name="export-json"),
    path("portal/data/export.pdf", data.export_pdf, name="export-pdf"),
    path("portal/data/correction", data.correction, name="correction"),
    path("portal/data/deletion", data.deletion, name="deletion"),
    path("portal/decisions", data.decisions, name="decisions"),
    # Help and the public pages.
    path("portal/help", help.help_page, name="help"),
    path("portal/contact", help.contact, name="contact"),
    path("how-it-works", help.how_it_works, name="how-it-works"),
    path("portal/partners", partners.partners, name="partners"),
    path("privacy", help.privacy, name="privacy"),
    path("terms", help.terms, name="terms"),
]
