"""Use cases of payments: one function per use case, each in a transaction.

- ``transitions``: the one way a payment's state changes.
- ``payments``: creating, editing, cancelling and expiring payments; orders; merchant reports.
- ``checkout``: the customer's steps on the hosted page.
- ``charges``: calls to the card processor that move money, and their repair.
"""
