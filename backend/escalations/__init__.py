"""Deadlines of mandatory reports (强制报告): late referrals are reported to coordinators (issue 6)."""
