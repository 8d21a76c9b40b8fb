"""Use cases of payments: one function per use case, each in a transaction.

- ``transitions``: the one way a payment's state changes.
- ``payments``: creating, editing, cancelling and expiring payments; merchant reports.
- ``orders``: a payment's orders, their status and shipment.
- ``sms_links``: a payment's link sent to the customer by SMS.
- ``inserts``: a new aggregate's rows written in one SQL statement.
- ``acceptance``: what accepting a payment does (ledger, notification, emails).
- ``checkout``: the customer's steps on the hosted page.
- ``charges``: calls to the card processor that move money, and their repair.
"""
