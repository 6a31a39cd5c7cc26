"""The national questionnaire, version 1: what seed 003 asks every pupil to know (在校未成年学生防性侵知识
知晓率100%). Eight questions a primary-school pupil can answer on a shared tablet in five minutes."""

from __future__ import annotations

from typing import Any

TITLE_ZH = "在校学生防性侵知识知晓问卷"
TITLE_EN = "Pupils' knowledge of protection from sexual abuse"
VERSION = 1
# Seven of eight right: the pupil knows the rules that matter, a slip on one is forgiven.
PASS_MARK = 7


def _q(
    qid: str, text_zh: str, text_en: str, options: list[tuple[str, str]], correct: list[str], *, multiple: bool = False
) -> dict[str, Any]:
    letters = "abcdef"
    return {
        "id": qid,
        "text_zh": text_zh,
        "text_en": text_en,
        "multiple": multiple,
        "options": [{"id": letters[i], "text_zh": zh, "text_en": en} for i, (zh, en) in enumerate(options)],
        "correct": correct,
    }


def questions() -> list[dict[str, Any]]:
    """The eight questions with their correct options."""
    return [
        _q(
            "q1",
            "背心、短裤覆盖的地方是隐私部位，别人不能看、不能摸。这句话对吗？",
            "The parts covered by a vest and shorts are private: nobody may look at or touch them. True?",
            [("对", "True"), ("不对", "False")],
            ["a"],
        ),
        _q(
            "q2",
            "熟悉的人（亲戚、邻居、老师）要摸你的隐私部位，你应该怎么做？",
            "Someone you know (a relative, a neighbour, a teacher) wants to touch your private parts. What do you do?",
            [
                ("他是熟人，可以", "They are familiar, it is fine"),
                ("大声拒绝，马上离开，告诉爸爸妈妈或老师", "Say no loudly, leave, tell a parent or teacher"),
                ("保守秘密，不告诉任何人", "Keep it secret"),
            ],
            ["b"],
        ),
        _q(
            "q3",
            "有人说“这是我们之间的秘密，不要告诉别人”，并让你感到不舒服，你应该？",
            "Someone says 'this is our secret, tell nobody' and it makes you uncomfortable. You should:",
            [("遵守约定，保守秘密", "Keep the promise"), ("告诉信任的大人", "Tell an adult you trust")],
            ["b"],
        ),
        _q(
            "q4",
            "遇到侵害或危险时，可以拨打哪些电话求助？（多选）",
            "Which numbers can you call for help when harmed or in danger? (choose all)",
            [
                ("110 报警电话", "110 police"),
                ("12355 青少年服务热线", "12355 youth hotline"),
                ("12338 妇女维权热线", "12338 women's rights hotline"),
                ("114 查号台", "114 directory"),
            ],
            ["a", "b", "c"],
            multiple=True,
        ),
        _q(
            "q5",
            "陌生人给你零食、玩具，要带你去别的地方，你应该？",
            "A stranger offers sweets or toys and wants to take you somewhere. You should:",
            [("跟他走", "Go along"), ("拒绝并离开，告诉家长", "Refuse, leave and tell your parents")],
            ["b"],
        ),
        _q(
            "q6",
            "网上认识的“朋友”要你发身体照片或单独见面，你应该？",
            "An online 'friend' asks for photos of your body or to meet alone. You should:",
            [
                ("发照片或赴约", "Send them or go"),
                ("拒绝，保存聊天记录，告诉家长或老师", "Refuse, keep the chat, tell a parent or teacher"),
            ],
            ["b"],
        ),
        _q(
            "q7",
            "如果不幸受到侵害，是你的错吗？",
            "If someone harms you, is it your fault?",
            [("是我的错", "Yes"), ("不是，错的是伤害你的人", "No, the fault is the person who harmed you")],
            ["b"],
        ),
        _q(
            "q8",
            "下列做法中，哪些能保护自己？（多选）",
            "Which of these keep you safe? (choose all)",
            [
                ("不单独进入陌生人的房间或车辆", "Never go alone into a stranger's room or car"),
                ("外出告诉家长去哪里、和谁在一起", "Tell your parents where you go and with whom"),
                ("天黑后独自去偏僻的地方", "Go alone to lonely places after dark"),
            ],
            ["a", "b"],
            multiple=True,
        ),
    ]
