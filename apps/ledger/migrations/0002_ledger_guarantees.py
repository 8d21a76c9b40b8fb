"""The ledger's guarantees, enforced by PostgreSQL whoever writes (service, admin, raw SQL).

- Each leg updates its account's running balance under the account's row lock, and records
  the balance after it and the time it was posted (clock time after the lock, so an
  account's legs are in time order).
- A leg on a closed account, on an account of the other mode, or in a currency other than
  the account's is refused.
- The legs inserted by one statement must leave every posting they touch balanced, in one
  currency and with two legs or more; a posting left without legs at commit is refused.
- Postings and legs are never updated or deleted; account balances change only through legs.
"""

from django.db import migrations

FORWARD = r"""
CREATE FUNCTION ledger_leg_before_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    posting_livemode boolean;
    account_row record;
BEGIN
    SELECT livemode INTO posting_livemode FROM ledger_posting WHERE id = NEW.posting_id;
    UPDATE ledger_account SET balance = balance + NEW.amount
     WHERE id = NEW.account_id
     RETURNING balance, livemode, balance_currency, closed_at, key INTO account_row;
    IF account_row.key IS NULL THEN
        RAISE EXCEPTION 'ledger: account % does not exist', NEW.account_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF account_row.closed_at IS NOT NULL THEN
        RAISE EXCEPTION 'ledger: account % is closed', account_row.key
            USING ERRCODE = 'check_violation';
    END IF;
    IF account_row.livemode IS DISTINCT FROM posting_livemode THEN
        RAISE EXCEPTION 'ledger: account % belongs to the other mode', account_row.key
            USING ERRCODE = 'check_violation';
    END IF;
    IF account_row.balance_currency <> NEW.amount_currency THEN
        RAISE EXCEPTION 'ledger: a % leg on % account %',
            NEW.amount_currency, account_row.balance_currency, account_row.key
            USING ERRCODE = 'check_violation';
    END IF;
    NEW.balance_after := account_row.balance;
    NEW.posted_at := clock_timestamp();
    RETURN NEW;
END
$$;

CREATE TRIGGER ledger_leg_before_insert BEFORE INSERT ON ledger_leg
    FOR EACH ROW EXECUTE FUNCTION ledger_leg_before_insert();

CREATE FUNCTION ledger_legs_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN
    SELECT l.posting_id, count(*) AS legs, count(DISTINCT l.amount_currency) AS currencies,
           sum(l.amount) AS total
      INTO bad
      FROM ledger_leg l
     WHERE l.posting_id IN (SELECT DISTINCT posting_id FROM new_legs)
     GROUP BY l.posting_id
    HAVING count(*) < 2 OR count(DISTINCT l.amount_currency) > 1 OR sum(l.amount) <> 0
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ledger: posting % is not balanced (% legs, % currencies, sum %)',
            bad.posting_id, bad.legs, bad.currencies, bad.total
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER ledger_legs_balanced AFTER INSERT ON ledger_leg
    REFERENCING NEW TABLE AS new_legs
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_legs_balanced();

CREATE FUNCTION ledger_posting_has_legs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT count(*) FROM ledger_leg WHERE posting_id = NEW.id) < 2 THEN
        RAISE EXCEPTION 'ledger: posting % has fewer than two legs', NEW.id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER ledger_posting_has_legs AFTER INSERT ON ledger_posting
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_posting_has_legs();

CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger: % rows are append-only; post a reversal instead', TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END
$$;

CREATE TRIGGER ledger_posting_append_only BEFORE UPDATE OR DELETE ON ledger_posting
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_leg_append_only BEFORE UPDATE OR DELETE ON ledger_leg
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();

CREATE FUNCTION ledger_account_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.balance IS DISTINCT FROM OLD.balance AND pg_trigger_depth() < 2 THEN
        RAISE EXCEPTION 'ledger: the balance of % changes only through legs', OLD.key
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF (NEW.key, NEW.kind, NEW.livemode, NEW.merchant_id, NEW.reference, NEW.balance_currency)
       IS DISTINCT FROM
       (OLD.key, OLD.kind, OLD.livemode, OLD.merchant_id, OLD.reference, OLD.balance_currency)
    THEN
        RAISE EXCEPTION 'ledger: account % cannot change what it is', OLD.key
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER ledger_account_guard BEFORE UPDATE ON ledger_account
    FOR EACH ROW EXECUTE FUNCTION ledger_account_guard();
"""

BACKWARD = r"""
DROP TRIGGER ledger_account_guard ON ledger_account;
DROP FUNCTION ledger_account_guard();
DROP TRIGGER ledger_leg_append_only ON ledger_leg;
DROP TRIGGER ledger_posting_append_only ON ledger_posting;
DROP FUNCTION ledger_append_only();
DROP TRIGGER ledger_posting_has_legs ON ledger_posting;
DROP FUNCTION ledger_posting_has_legs();
DROP TRIGGER ledger_legs_balanced ON ledger_leg;
DROP FUNCTION ledger_legs_balanced();
DROP TRIGGER ledger_leg_before_insert ON ledger_leg;
DROP FUNCTION ledger_leg_before_insert();
"""


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
