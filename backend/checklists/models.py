"""Versioned checklist templates (the built-in one is 六看六问)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, UniqueConstraint
from sqlmodel import Field, SQLModel

from backend.core import clock


class ChecklistTemplate(SQLModel, table=True):
    """One published version of a template. Versions are immutable: a new version is a new row."""

    __tablename__ = "checklist_template"
    __table_args__ = (UniqueConstraint("code", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=60, index=True)
    version: int
    title_zh: str = Field(max_length=120)
    title_en: str = Field(max_length=120)
    items: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    rev: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    published_by: int | None = Field(default=None, foreign_key="app_user.id")
    published_at: datetime = Field(default_factory=clock.now, sa_column=Column(DateTime(timezone=True), nullable=False))
