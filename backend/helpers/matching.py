"""Matching helpers to children: a minimum-cost assignment (scipy's linear_sum_assignment).

Rows are the open places ("slots") of children: one for 一对一, two or more for 多对一 (重大风险).
Columns are helpers with a free place. Each round solves one assignment in which a helper takes
at most one new slot, so two slots of one child always get two different helpers; loads are
updated and the next round runs until every slot is filled or nobody fits. A helper is never
given more children than their capacity.

Cost of a (slot, helper) pair, every term in [0, 1] before its weight:
- distance from the helper's home to the child's home (beyond the limit: not allowed);
- skill fit: the share of skills the child's categories call for that the helper lacks;
- sex: the first slot of a girl goes to a woman whenever any woman can take it (a hard rule);
  further slots prefer women (soft);
- load: how full the helper already is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from backend.core.geo import distance_m
from backend.helpers.models import Skill

FORBIDDEN = 1e6
W_DISTANCE, W_SKILL, W_SEX, W_LOAD = 1.0, 2.0, 1.0, 1.0

# Which help each 附件1 category (and group) calls for (domain.md section 5).
CATEGORY_SKILLS: dict[str, tuple[Skill, ...]] = {
    "严重不良行为": (Skill.education, Skill.legal_aid),
    "不良行为": (Skill.education,),
    "心理困境": (Skill.psychology,),
    "家庭监护困境": (Skill.family_mediation, Skill.legal_aid),
    "生活困境": (Skill.family_mediation,),
    "残疾": (Skill.medical,),
}
# A child on the 附件3 ledger (vulnerable to sexual abuse) or with signs of abuse needs these.
VULNERABLE_SKILLS: tuple[Skill, ...] = (Skill.psychology, Skill.legal_aid)

_SKILL_ZH = {Skill.psychology: "心理疏导", Skill.legal_aid: "法律援助", Skill.education: "教育帮扶",
             Skill.medical: "医疗救治", Skill.family_mediation: "家事调解"}


@dataclass(frozen=True)
class ChildNeed:
    child_id: int
    sex: str | None
    lon: float | None
    lat: float | None
    skills: frozenset[str]
    slots: int  # places still to fill
    excluded: frozenset[int] = frozenset()  # helpers who declined, let it lapse, hold it already, or were rejected
    has_woman: bool = False  # a woman already helps (or is offered) this child
    area: str = "/"  # path of the child's town: helpers of that town, or of a unit above it, may help


@dataclass
class HelperSlotInfo:
    helper_id: int
    sex: str
    lon: float | None
    lat: float | None
    skills: frozenset[str]
    capacity: int
    load: int
    unit_path: str = "/"


@dataclass(frozen=True)
class Match:
    child_id: int
    helper_id: int
    slot: int
    cost: float
    reasons: list[dict[str, Any]] = field(default_factory=list)


def needed_skills(categories: list[str], groups: list[str], vulnerable: bool) -> frozenset[str]:
    """The skills a child's categories, groups and ledger entry call for."""
    out: set[str] = set()
    for c in [*categories, *groups]:
        out.update(s.value for s in CATEGORY_SKILLS.get(c, ()))
    if vulnerable:
        out.update(s.value for s in VULNERABLE_SKILLS)
    return frozenset(out)


def _distance_km(child: ChildNeed, helper: HelperSlotInfo) -> float | None:
    if None in (child.lon, child.lat, helper.lon, helper.lat):
        return None
    return distance_m(helper.lon, helper.lat, child.lon, child.lat) / 1000.0  # type: ignore[arg-type]


def pair_cost(child: ChildNeed, helper: HelperSlotInfo, *, first_place: bool, max_km: float,
              woman_available: bool) -> tuple[float, list[dict[str, Any]]]:
    """The cost of giving `helper` a place of `child` (`first_place`: the first one filled this
    round, which must go to a woman for a girl who has none yet, if any woman can take it), and why."""
    if helper.helper_id in child.excluded or helper.load >= helper.capacity or not _same_area(child, helper):
        return FORBIDDEN, []
    girl = child.sex == "female"
    if girl and first_place and not child.has_woman and woman_available and helper.sex != "female":
        return FORBIDDEN, []
    reasons: list[dict[str, Any]] = []
    km = _distance_km(child, helper)
    if km is not None and km > max_km:
        return FORBIDDEN, []
    d = 0.5 if km is None else km / max_km
    reasons.append({"factor": "distance", "km": None if km is None else round(km, 2), "cost": round(W_DISTANCE * d, 3),
                    "zh": "住址未知，按中等距离计" if km is None else f"距离约{km:.1f}公里",
                    "en": "home unknown, counted as mid distance" if km is None else f"about {km:.1f} km away"})
    matched = sorted(child.skills & helper.skills)
    missing = sorted(child.skills - helper.skills)
    s = len(missing) / len(child.skills) if child.skills else 0.0
    reasons.append({"factor": "skills", "needed": sorted(child.skills), "matched": matched,
                    "cost": round(W_SKILL * s, 3),
                    "zh": ("具备所需专长：" + "、".join(_SKILL_ZH[Skill(m)] for m in matched)) if matched
                    else ("无需特定专长" if not child.skills else "缺少所需专长"),
                    "en": f"matches {', '.join(matched) or 'none'} of {', '.join(sorted(child.skills)) or 'none'}"})
    x = 0.0
    if girl:
        x = 0.0 if helper.sex == "female" else 1.0
        reasons.append({"factor": "sex", "cost": round(W_SEX * x, 3),
                        "zh": "女童由女性帮扶人帮扶" if helper.sex == "female" else "暂无可用女性帮扶人",
                        "en": "a woman helps a girl" if helper.sex == "female" else "no woman available"})
    load = helper.load / helper.capacity if helper.capacity else 1.0
    reasons.append({"factor": "load", "load": helper.load, "capacity": helper.capacity,
                    "cost": round(W_LOAD * load, 3),
                    "zh": f"当前帮扶{helper.load}人，上限{helper.capacity}人",
                    "en": f"helps {helper.load} of at most {helper.capacity}"})
    return W_DISTANCE * d + W_SKILL * s + W_SEX * x + W_LOAD * load, reasons


def match(children: list[ChildNeed], helpers: list[HelperSlotInfo], *, max_km: float) -> list[Match]:
    """Fill as many slots as possible at minimum total cost, never above any helper's capacity."""
    # numpy and scipy load here, not at import: every API and worker process would pay for them at
    # start-up, and only the matching job uses them.
    import numpy as np
    from scipy.optimize import linear_sum_assignment

    pool = {h.helper_id: HelperSlotInfo(**vars(h)) for h in helpers}
    open_slots = {c.child_id: c.slots for c in children}
    taken: dict[int, set[int]] = {c.child_id: set(c.excluded) for c in children}
    has_woman = {c.child_id: c.has_woman for c in children}
    filled: dict[int, int] = {c.child_id: 0 for c in children}
    by_id = {c.child_id: c for c in children}
    out: list[Match] = []
    while True:
        rows = [(cid, filled[cid] + k) for cid, n in open_slots.items() for k in range(n)]
        cols = [h for h in pool.values() if h.load < h.capacity]
        if not rows or not cols:
            return out
        cost = np.full((len(rows), len(cols)), FORBIDDEN)
        why: dict[tuple[int, int], list[dict[str, Any]]] = {}
        for i, (cid, slot) in enumerate(rows):
            child = ChildNeed(**{**vars(by_id[cid]), "excluded": frozenset(taken[cid]), "has_woman": has_woman[cid]})
            woman = any(h.sex == "female" and h.helper_id not in taken[cid] and _within(child, h, max_km)
                        for h in cols)
            for j, h in enumerate(cols):
                c, reasons = pair_cost(child, h, first_place=slot == filled[cid], max_km=max_km,
                                       woman_available=woman)
                cost[i, j] = c
                why[(i, j)] = reasons
        row_ind, col_ind = linear_sum_assignment(cost)
        progress = False
        used_rows_per_child: dict[int, int] = {}
        for i, j in zip(row_ind, col_ind, strict=True):
            if cost[i, j] >= FORBIDDEN:
                continue
            cid, slot = rows[i]
            helper = cols[j]
            if helper.helper_id in taken[cid]:
                continue
            taken[cid].add(helper.helper_id)
            has_woman[cid] = has_woman[cid] or helper.sex == "female"
            helper.load += 1
            used_rows_per_child[cid] = used_rows_per_child.get(cid, 0) + 1
            out.append(Match(cid, helper.helper_id, slot, float(cost[i, j]), why[(i, j)]))
            progress = True
        for cid, n in used_rows_per_child.items():
            open_slots[cid] -= n
            filled[cid] += n
        open_slots = {cid: n for cid, n in open_slots.items() if n > 0}
        if not progress:
            return out


def _same_area(child: ChildNeed, helper: HelperSlotInfo) -> bool:
    return helper.unit_path.startswith(child.area) or child.area.startswith(helper.unit_path)


def _within(child: ChildNeed, helper: HelperSlotInfo, max_km: float) -> bool:
    km = _distance_km(child, helper)
    return _same_area(child, helper) and (km is None or km <= max_km)
