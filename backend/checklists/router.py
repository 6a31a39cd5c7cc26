"""Checklist templates: read by every field role, new versions published by coordinators."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from backend.accounts.deps import CurrentPrincipal, requires
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.checklists import service
from backend.core.db import SessionDep
from backend.core.pagination import Page, Paging

router = APIRouter(prefix="/checklists", tags=["checklists"])


class PublishRequest(BaseModel):
    title_zh: str = Field(min_length=1, max_length=120)
    title_en: str = Field(min_length=1, max_length=120)
    items: list[dict[str, Any]] = Field(min_length=1, max_length=100)


@router.get("")
def list_templates(
    principal: CurrentPrincipal, session: SessionDep, page: Paging
) -> list[dict[str, Any]] | Page[dict[str, Any]]:
    templates = [service.template_public(t) for t in service.list_templates(session)]
    return page.answer(templates, key=lambda t: (t["code"], t["version"]))


@router.get("/{code}/{version}")
def get_template(code: str, version: int, principal: CurrentPrincipal, session: SessionDep) -> dict[str, Any]:
    return service.template_public(service.get_template(session, code, version))


@router.post("/{code}", status_code=201)
def publish(
    code: str,
    body: PublishRequest,
    principal: Annotated[Principal, requires(Action.checklist_manage)],
    session: SessionDep,
) -> dict[str, Any]:
    """Publish the next version; visits recorded on older versions stay valid."""
    return service.template_public(
        service.publish(session, principal, code=code, title_zh=body.title_zh, title_en=body.title_en, items=body.items)
    )
