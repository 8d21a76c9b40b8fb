"""A posting's legs are all written by one statement: a later statement cannot add legs to a
stored posting, even balanced ones (before, only the balance of the touched postings was
checked)."""

from django.db import migrations

FORWARD = r"""
CREATE OR REPLACE FUNCTION ledger_legs_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN
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
"""

BACKWARD = r"""
CREATE OR REPLACE FUNCTION ledger_legs_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
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
"""


class Migration(migrations.Migration):
    dependencies = [("ledger", "0003_labels")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
