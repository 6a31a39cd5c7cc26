"""Helpers for push handlers that treat items one at a time inside savepoints."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from backend.core.errors import Conflict, DomainError, run_aftermath, validation_problem
from backend.sync.kinds import ItemResult, ItemStatus


def rejected(error: DomainError, locale: str) -> ItemResult:
    return ItemResult(ItemStatus.rejected, problem=error.to_problem(locale))


M = TypeVar("M", bound=BaseModel)


def parse_data(model: type[M], data: dict[str, Any], locale: str) -> M | ItemResult:
    """The item's data as `model`, or a rejected result naming each bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        return rejected(validation_problem([dict(e) for e in exc.errors()], locale), locale)


def in_savepoint(session: Session, locale: str, work: Callable[[], ItemResult]) -> ItemResult:
    """Run one item's work in a savepoint: a domain error or constraint race rejects this item only."""
    nested = session.begin_nested()
    try:
        result = work()
    except DomainError as exc:
        nested.rollback()
        run_aftermath(session, exc)  # what the refusal keeps (an audit entry, a notification)
        return rejected(exc, locale)
    except IntegrityError:
        nested.rollback()
        return rejected(
            Conflict("与已保存的数据冲突，请稍后重试同步", "Conflicts with stored data; sync again later"), locale
        )
    nested.commit()
    return result
