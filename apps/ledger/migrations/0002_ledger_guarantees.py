"""The ledger's guarantees, enforced by PostgreSQL whoever writes (service, admin, raw SQL).

Each leg carries ``balance_after`` and ``posted_at``, given by its writer (the posting service
computes them under the accounts' row locks, in its one statement). After each statement that
inserts legs, one trigger:
- locks the accounts it touches, in id order;
- refuses a leg on a missing or closed account, on an account of the other mode, or in
  another currency than the account's;
- checks that each account's new legs, in (posted_at, id) order, continue its stored balance
  (``balance_after`` = stored balance + running sum) and are not earlier than its last leg;
- moves each account's balance and last posting time once (a row trigger per leg cost five
  times as much);
- refuses any posting touched that is unbalanced, in two currencies, with fewer than two legs,
  or with legs written by an earlier statement.
A deferred constraint trigger refuses a posting left without legs at commit. Postings and
legs are never updated or deleted; an account's balance and last posting time change only
through the leg trigger, and its kind, mode, owner and currency never.
"""

from django.db import migrations

FORWARD = r"""
CREATE FUNCTION ledger_legs_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN
    PERFORM 1 FROM ledger_account
      WHERE id IN (SELECT account_id FROM new_legs) ORDER BY id FOR UPDATE;

    SELECT n.account_id, a.key, a.closed_at,
           a.livemode IS DISTINCT FROM p.livemode AS other_mode,
           a.balance_currency, n.amount_currency
      INTO bad
      FROM new_legs n
      JOIN ledger_posting p ON p.id = n.posting_id
      LEFT JOIN ledger_account a ON a.id = n.account_id
     WHERE a.id IS NULL OR a.closed_at IS NOT NULL OR a.livemode IS DISTINCT FROM p.livemode
        OR a.balance_currency <> n.amount_currency
     LIMIT 1;
    IF FOUND THEN
        IF bad.key IS NULL THEN
            RAISE EXCEPTION 'ledger: account % does not exist', bad.account_id
                USING ERRCODE = 'foreign_key_violation';
        ELSIF bad.closed_at IS NOT NULL THEN
            RAISE EXCEPTION 'ledger: account % is closed', bad.key
                USING ERRCODE = 'check_violation';
        ELSIF bad.other_mode THEN
            RAISE EXCEPTION 'ledger: account % belongs to the other mode', bad.key
                USING ERRCODE = 'check_violation';
        END IF;
        RAISE EXCEPTION 'ledger: a % leg on % account %',
            bad.amount_currency, bad.balance_currency, bad.key
            USING ERRCODE = 'check_violation';
    END IF;

    SELECT r.key, r.id, r.balance_after, r.expected, r.posted_at, r.last_posted_at
      INTO bad
      FROM (SELECT a.key, n.id, n.balance_after, n.posted_at, a.last_posted_at,
                   a.balance + sum(n.amount) OVER (PARTITION BY n.account_id
                                                   ORDER BY n.posted_at, n.id) AS expected
              FROM new_legs n JOIN ledger_account a ON a.id = n.account_id) r
     WHERE r.balance_after IS DISTINCT FROM r.expected OR r.posted_at < r.last_posted_at
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION
            'ledger: leg % on % has balance_after % at %; expected % after %',
            bad.id, bad.key, bad.balance_after, bad.posted_at, bad.expected, bad.last_posted_at
            USING ERRCODE = 'check_violation';
    END IF;

    UPDATE ledger_account a
       SET balance = a.balance + s.total, last_posted_at = s.last_at
      FROM (SELECT account_id, sum(amount) AS total, max(posted_at) AS last_at
              FROM new_legs GROUP BY account_id) s
     WHERE a.id = s.account_id;

    SELECT n.posting_id, n.legs AS new_legs, t.legs, t.currencies, t.total
      INTO bad
      FROM (SELECT posting_id, count(*) AS legs FROM new_legs GROUP BY posting_id) n
     CROSS JOIN LATERAL (
           SELECT count(*) AS legs, count(DISTINCT l.amount_currency) AS currencies,
                  sum(l.amount) AS total
             FROM ledger_leg l WHERE l.posting_id = n.posting_id) t
     WHERE t.legs <> n.legs OR t.legs < 2 OR t.currencies > 1 OR t.total <> 0
     LIMIT 1;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF bad.legs <> bad.new_legs THEN
        RAISE EXCEPTION 'ledger: the legs of posting % must all be written in one statement',
            bad.posting_id
            USING ERRCODE = 'check_violation';
    END IF;
    RAISE EXCEPTION 'ledger: posting % is not balanced (% legs, % currencies, sum %)',
        bad.posting_id, bad.legs, bad.currencies, bad.total
        USING ERRCODE = 'check_violation';
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
    IF (NEW.balance, NEW.last_posted_at) IS DISTINCT FROM (OLD.balance, OLD.last_posted_at)
       AND pg_trigger_depth() < 2 THEN
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
"""


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
