from django.db import migrations

FORWARD = """
DROP TRIGGER apikey_credentials_changed ON merchants_apikey;
DROP TRIGGER merchant_credentials_changed ON merchants_merchant;
DROP FUNCTION tranche_notify_credentials();
CREATE TRIGGER merchant_config_changed
    AFTER UPDATE OR DELETE OR TRUNCATE ON merchants_merchant
    FOR EACH STATEMENT EXECUTE FUNCTION tranche_notify_config();
CREATE TRIGGER apikey_config_changed
    AFTER UPDATE OF secret_hash, livemode, merchant_id, expires_at, revoked_at
    OR DELETE OR TRUNCATE ON merchants_apikey
    FOR EACH STATEMENT EXECUTE FUNCTION tranche_notify_config();
CREATE TRIGGER feeplan_config_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON merchants_feeplan
    FOR EACH STATEMENT EXECUTE FUNCTION tranche_notify_config();
"""

BACKWARD = """
DROP TRIGGER feeplan_config_changed ON merchants_feeplan;
DROP TRIGGER apikey_config_changed ON merchants_apikey;
DROP TRIGGER merchant_config_changed ON merchants_merchant;
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


class Migration(migrations.Migration):
    """Keys, merchants and fee plans all notify the one config cache (common/config_cache.py).

    A new fee plan (INSERT) notifies too: eligibility caches a merchant's whole catalogue.
    """

    dependencies = [
        ("merchants", "0002_credential_notifications"),
        ("common", "0002_config_notifications"),
    ]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
