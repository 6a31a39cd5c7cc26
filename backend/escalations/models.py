"""The record that a late referral stage was reported to the coordinators (at most once)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime, UniqueConstraint
from sqlmodel import Field, SQLModel


class ReferralEscalation(SQLModel, table=True):
    """A referral stage (receive = acknowledge, handle) that missed its deadline and was escalated."""

    __tablename__ = "referral_escalation"
    __table_args__ = (UniqueConstraint("referral_id", "stage"),)

    id: int | None = Field(default=None, primary_key=True)
    referral_id: int = Field(foreign_key="referral.id", index=True, ondelete="CASCADE")
    stage: str = Field(max_length=12)  # receive | handle
    due_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    escalated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    notified_unit_id: int | None = Field(default=None, foreign_key="org_unit.id")
