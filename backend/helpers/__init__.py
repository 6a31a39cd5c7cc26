"""Helpers (帮扶人) for children at risk: profiles, matching, proposals, answers, follow-ups (issue 6)."""
