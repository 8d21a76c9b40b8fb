"""The customer portal: a customer signs in without a password (a one-time code, or a signed
link from an email) and sees every plan they hold, at every merchant, in one mode; pays
early, postpones, changes card, downloads receipts and exercises their data rights."""
