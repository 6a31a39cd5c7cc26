"""The built-in 六看六问 template (seed 004): six look/ask pairs, zh-CN with English.

Every item is answered yes / no / unknown, may carry a free note and photo references, and is
required when the household was actually visited. `concern` is the answer that signals a
problem; backend/visits/risk_rules.py turns concerns into risk levels.
"""

from __future__ import annotations

from typing import Any

SIX_LOOKS_CODE = "six-looks-six-asks"
SIX_LOOKS_VERSION = 1
SIX_LOOKS_TITLE_ZH = "六看六问"
SIX_LOOKS_TITLE_EN = "Six looks, six asks"

ANSWER_VALUES = ("yes", "no", "unknown")

_PAIRS: tuple[tuple[str, str, str, str, str, str], ...] = (
    (
        "看是否面临性侵、校园欺凌等不法侵害",
        "Signs of sexual abuse, bullying or other harm",
        "yes",
        "问是否知晓求助途径",
        "Does the child know how to get help",
        "no",
    ),
    (
        "看身体健康状况是否良好",
        "Is the child in good health",
        "no",
        "问身体发育、生理期是否正常等情况",
        "Are physical development and menstruation normal",
        "no",
    ),
    (
        "看是否校外租房",
        "Does the child rent a room alone outside school",
        "yes",
        "问是否与异性监护人分铺分房居住",
        "Does the child sleep apart from opposite-sex guardians",
        "no",
    ),
    (
        "看居住环境是否良好",
        "Are the living conditions adequate",
        "no",
        "问是否存在安全隐患",
        "Are there safety hazards at home",
        "yes",
    ),
    (
        "看是否正常上学",
        "Does the child attend school normally",
        "no",
        "问是否厌学、逃学、辍学",
        "Is there school aversion, truancy or dropout",
        "yes",
    ),
    (
        "看假期生活情况是否正常",
        "Is holiday life normal",
        "no",
        "问是否掌握防溺水、防交通事故、防触电等安全知识",
        "Does the child know drowning, traffic and electrocution safety",
        "no",
    ),
)


def six_looks_items() -> list[dict[str, Any]]:
    """The template's items in display order."""
    items: list[dict[str, Any]] = []
    for n, (look_zh, look_en, look_concern, ask_zh, ask_en, ask_concern) in enumerate(_PAIRS, start=1):
        for kind, zh, en, concern in (("look", look_zh, look_en, look_concern), ("ask", ask_zh, ask_en, ask_concern)):
            items.append(
                {
                    "id": f"{kind}{n}",
                    "pair": n,
                    "kind": kind,
                    "label_zh": zh,
                    "label_en": en,
                    "answer_type": "yes_no_unknown",
                    "values": list(ANSWER_VALUES),
                    "concern": concern,
                    "required": True,
                    "note": True,
                    "photos": True,
                }
            )
    return items
