"""django-q2 entry points of payments: thin, idempotent, safe to run twice and at once."""
