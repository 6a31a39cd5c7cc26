"""Checklist templates: the built-in one, published versions, and answer validation."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from backend.accounts.principal import Principal
from backend.checklists import builtin
from backend.checklists.models import ChecklistTemplate
from backend.core import clock
from backend.core.db import dialect_insert
from backend.core.errors import InvalidInput, NotFound
from backend.sync import revisions


class TemplateNotFound(NotFound):
    code = "checklist-template-not-found"
    title_zh = "检查表模板不存在"
    title_en = "Checklist template not found"


def ensure_builtin(session: Session) -> None:
    """Make sure the built-in 六看六问 version 1 exists (idempotent, race-safe)."""
    exists = session.execute(
        select(col(ChecklistTemplate.id)).where(
            col(ChecklistTemplate.code) == builtin.SIX_LOOKS_CODE,
            col(ChecklistTemplate.version) == builtin.SIX_LOOKS_VERSION,
        )
    ).first()
    if exists is not None:
        return
    insert = dialect_insert(session)
    session.execute(
        insert(ChecklistTemplate)
        .values(
            code=builtin.SIX_LOOKS_CODE,
            version=builtin.SIX_LOOKS_VERSION,
            title_zh=builtin.SIX_LOOKS_TITLE_ZH,
            title_en=builtin.SIX_LOOKS_TITLE_EN,
            items=builtin.six_looks_items(),
            rev=revisions.allocate(session),
            published_at=clock.now(),
        )
        .on_conflict_do_nothing()
    )


def get_template(session: Session, code: str, version: int) -> ChecklistTemplate:
    """One published version."""
    ensure_builtin(session)
    template = session.execute(
        select(ChecklistTemplate).where(col(ChecklistTemplate.code) == code, col(ChecklistTemplate.version) == version)
    ).scalar_one_or_none()
    if not isinstance(template, ChecklistTemplate):
        raise TemplateNotFound(f"检查表模板{code}第{version}版不存在", f"Template {code} v{version} does not exist")
    return template


def list_templates(session: Session) -> list[ChecklistTemplate]:
    """Every published version, newest last per code."""
    ensure_builtin(session)
    return list(
        session.execute(
            select(ChecklistTemplate).order_by(col(ChecklistTemplate.code), col(ChecklistTemplate.version))
        ).scalars()
    )


def _check_items(items: list[dict[str, Any]]) -> None:
    seen: set[str] = set()
    for i, item in enumerate(items):
        item_id = item.get("id")
        if not isinstance(item_id, str) or not item_id or item_id in seen:
            raise InvalidInput(f"第{i + 1}项缺少唯一的id", f"item {i + 1} needs a unique id", field=f"items.{i}.id")
        seen.add(item_id)
        if not item.get("label_zh"):
            raise InvalidInput(f"第{i + 1}项缺少中文标题", f"item {i + 1} needs label_zh", field=f"items.{i}.label_zh")
        if item.get("answer_type", "yes_no_unknown") not in ("yes_no_unknown", "text"):
            raise InvalidInput(
                f"第{i + 1}项的答案类型无效", f"item {i + 1} has an unknown answer_type", field=f"items.{i}.answer_type"
            )


def publish(
    session: Session, principal: Principal, *, code: str, title_zh: str, title_en: str, items: list[dict[str, Any]]
) -> ChecklistTemplate:
    """Publish the next version of a template. Older versions stay valid for visits recorded on them."""
    ensure_builtin(session)
    _check_items(items)
    latest = session.execute(
        select(func.max(ChecklistTemplate.version)).where(col(ChecklistTemplate.code) == code)
    ).scalar_one_or_none()
    template = ChecklistTemplate(
        code=code,
        version=(latest or 0) + 1,
        title_zh=title_zh,
        title_en=title_en,
        items=[
            {
                "answer_type": "yes_no_unknown",
                "values": list(builtin.ANSWER_VALUES),
                "required": True,
                "note": True,
                "photos": True,
                **item,
            }
            for item in items
        ],
        rev=revisions.allocate(session),
        published_by=principal.user_id,
        published_at=clock.now(),
    )
    session.add(template)
    session.flush()
    return template


def template_public(t: ChecklistTemplate) -> dict[str, Any]:
    """A template as the API and sync pull show it."""
    return {
        "id": t.id,
        "code": t.code,
        "version": t.version,
        "title_zh": t.title_zh,
        "title_en": t.title_en,
        "items": t.items,
        "published_at": clock.as_utc(t.published_at).isoformat(),
    }
