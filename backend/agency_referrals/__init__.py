"""Referrals between units (转介, issue 16): a unit refers a case or a service to another, sharing the
minimum necessary."""
