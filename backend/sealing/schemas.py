"""What opening a sealed record takes."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=500)]


class OpenSealed(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason = Field(description="Why this sealed record is opened (2 to 500 characters, kept in the audit "
                                       "log with the opening)")
