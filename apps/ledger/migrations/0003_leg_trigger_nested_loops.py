"""The leg trigger looks up the accounts and postings of a statement's new legs by primary
key. PostgreSQL has no statistics on a trigger's transition table, so it guessed large and
merge-joined or hashed the whole ``ledger_account`` and ``ledger_posting`` tables: the cost
of one posting statement grew with the size of the ledger (half a second per batch of 200
postings beside a million accounts). Nested loops over the primary keys keep it proportional
to the statement's own legs."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("ledger", "0002_ledger_guarantees")]

    operations = [
        migrations.RunSQL(
            "ALTER FUNCTION ledger_legs_balanced() "
            "SET enable_mergejoin = off SET enable_hashjoin = off",
            reverse_sql="ALTER FUNCTION ledger_legs_balanced() RESET ALL",
        )
    ]
