"""Campaigns and their phases; resolution of a reporting period (phase, month or dates)."""
