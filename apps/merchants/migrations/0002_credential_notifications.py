from django.db import migrations

NOTIFY = """
CREATE FUNCTION tranche_notify_credentials() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tranche_credentials', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER merchant_credentials_changed
    AFTER UPDATE OR DELETE OR TRUNCATE ON merchants_merchant
    FOR EACH STATEMENT EXECUTE FUNCTION tranche_notify_credentials();
CREATE TRIGGER apikey_credentials_changed
    AFTER UPDATE OF secret_hash, livemode, merchant_id, expires_at, revoked_at
    OR DELETE OR TRUNCATE ON merchants_apikey
    FOR EACH STATEMENT EXECUTE FUNCTION tranche_notify_credentials();
"""

DROP = """
DROP TRIGGER apikey_credentials_changed ON merchants_apikey;
DROP TRIGGER merchant_credentials_changed ON merchants_merchant;
DROP FUNCTION tranche_notify_credentials();
"""


class Migration(migrations.Migration):
    """Tell every process's API key cache (credential_cache.py) when keys or merchants change."""

    dependencies = [("merchants", "0001_initial")]

    operations = [migrations.RunSQL(NOTIFY, DROP)]
