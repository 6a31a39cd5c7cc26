"""The risk rule table: which answers of a 六看六问 visit raise a child's risk level, and why.

Each rule names a checklist item and the answer that triggers it. A triggered rule raises the
level to AT LEAST its `level` (rules never lower a level; only a coordinator's override does, and
the history keeps both). The visit's level is the highest level of its triggered rules; its
reasons are every triggered rule, in table order. A rule with `referral=True` also creates a
mandatory report (强制报告) to the police of the household's town at once.

| rule              | item  | answer | at least  | referral | meaning                                                  |
|-------------------|-------|--------|-----------|----------|----------------------------------------------------------|
| abuse_signs       | look1 | yes    | 重大风险  | yes      | signs of sexual abuse, bullying or other harm            |
| no_help_route     | ask1  | no     | 一般风险  |          | does not know how to get help                            |
| poor_health       | look2 | no     | 一般风险  |          | health is not good                                       |
| abnormal_growth   | ask2  | no     | 一般风险  |          | development or menstruation not normal                   |
| renting_alone     | look3 | yes    | 较大风险  |          | rents a room alone outside school                        |
| shares_bed        | ask3  | no     | 较大风险  |          | does not sleep apart from an opposite-sex guardian       |
| poor_housing      | look4 | no     | 一般风险  |          | inadequate living conditions                             |
| home_hazards      | ask4  | yes    | 一般风险  |          | safety hazards at home                                   |
| not_in_school     | look5 | no     | 较大风险  |          | does not attend school normally                          |
| truancy_dropout   | ask5  | yes    | 较大风险  |          | school aversion, truancy or dropout                      |
| holiday_neglect   | look6 | no     | 一般风险  |          | holiday life not normal                                  |
| no_safety_skills  | ask6  | no     | 低风险    |          | lacks drowning/traffic/electrocution safety knowledge    |

Rules apply to the built-in template's item ids; a later template version reusing those ids gets
the same rules. Visits with an outcome other than "visited" trigger nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from backend.registry.models import RiskLevel


@dataclass(frozen=True)
class RiskRule:
    name: str
    item: str
    answer: str
    level: RiskLevel
    reason_zh: str
    reason_en: str
    referral: bool = False


RULES: tuple[RiskRule, ...] = (
    RiskRule(
        "abuse_signs",
        "look1",
        "yes",
        RiskLevel.severe,
        "发现性侵、校园欺凌等不法侵害迹象",
        "Signs of sexual abuse, bullying or other harm",
        referral=True,
    ),
    RiskRule("no_help_route", "ask1", "no", RiskLevel.general, "不知晓求助途径", "Does not know how to get help"),
    RiskRule("poor_health", "look2", "no", RiskLevel.general, "身体健康状况不佳", "Health is not good"),
    RiskRule(
        "abnormal_growth",
        "ask2",
        "no",
        RiskLevel.general,
        "身体发育或生理期异常",
        "Development or menstruation not normal",
    ),
    RiskRule("renting_alone", "look3", "yes", RiskLevel.major, "校外独自租房", "Rents a room alone outside school"),
    RiskRule(
        "shares_bed",
        "ask3",
        "no",
        RiskLevel.major,
        "未与异性监护人分铺分房居住",
        "Does not sleep apart from an opposite-sex guardian",
    ),
    RiskRule("poor_housing", "look4", "no", RiskLevel.general, "居住环境差", "Inadequate living conditions"),
    RiskRule("home_hazards", "ask4", "yes", RiskLevel.general, "居住存在安全隐患", "Safety hazards at home"),
    RiskRule("not_in_school", "look5", "no", RiskLevel.major, "未正常上学", "Does not attend school normally"),
    RiskRule(
        "truancy_dropout", "ask5", "yes", RiskLevel.major, "存在厌学、逃学或辍学", "School aversion, truancy or dropout"
    ),
    RiskRule("holiday_neglect", "look6", "no", RiskLevel.general, "假期生活缺乏照看", "Holiday life not normal"),
    RiskRule(
        "no_safety_skills",
        "ask6",
        "no",
        RiskLevel.low,
        "未掌握防溺水、防交通事故、防触电等安全知识",
        "Lacks drowning, traffic or electrocution safety knowledge",
    ),
)


@dataclass(frozen=True)
class Assessment:
    level: RiskLevel | None
    reasons: list[dict[str, Any]]
    referral: bool


NO_RISK = Assessment(None, [], False)


def assess(outcome: str, answers: dict[str, Any]) -> Assessment:
    """Apply the table to one visit's answers."""
    if outcome != "visited" or not answers:
        return NO_RISK
    # Each answer is {"value": ...} or a bare string. RULES is in table order, so the reasons come out
    # in table order with no sort.
    values = {item: a.get("value") if isinstance(a, dict) else a for item, a in answers.items()}
    triggered = [rule for rule in RULES if values.get(rule.item) == rule.answer]
    if not triggered:
        return NO_RISK
    level = max((r.level for r in triggered), key=lambda lv: lv.rank)
    reasons = [
        {"rule": r.name, "item": r.item, "level": r.level.value, "reason_zh": r.reason_zh, "reason_en": r.reason_en}
        for r in triggered
    ]
    return Assessment(level, reasons, any(r.referral for r in triggered))


def raised(current: str | None, computed: RiskLevel | None) -> RiskLevel | None:
    """The new level when `computed` is above `current`, else None (rules never lower a level)."""
    if computed is None:
        return None
    if current is None or computed.rank > RiskLevel(current).rank:
        return computed
    return None
