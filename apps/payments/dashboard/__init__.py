"""The merchant dashboard's pages about payments: home and charts, the payment list and
page, remote sales, exports. Account pages (keys, settings, staff) live in apps.merchants,
payouts in apps.ledger."""
