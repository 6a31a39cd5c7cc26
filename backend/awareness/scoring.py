"""Scoring a respondent's answers (知晓率评分): pure functions, no database.

A question is right when the chosen options are exactly its correct options (no more, no fewer); the
score is the number of right questions; a respondent knows (知晓) when the score reaches the version's
pass mark. An unanswered question is simply not right."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from backend.core import text
from backend.core.errors import InvalidInput

MAX_QUESTIONS = 30
MAX_OPTIONS = 6
ID_MAX = 16
TEXT_MAX = 300


class QuestionnaireInvalid(InvalidInput):
    code = "awareness-questionnaire-invalid"
    title_zh = "问卷内容有误"
    title_en = "The questionnaire is not valid"


class AnswersInvalid(InvalidInput):
    code = "awareness-answers-invalid"
    title_zh = "答卷内容有误"
    title_en = "The answers are not valid"


def _text(value: Any, field: str, where_zh: str) -> str:
    if not isinstance(value, str) or not text.visible(value) or len(value) > TEXT_MAX:
        raise QuestionnaireInvalid(
            f"{where_zh}需要1至{TEXT_MAX}个字符的文字", f"{field} needs 1 to {TEXT_MAX} characters", field=field
        )
    bad = text.first_refused(value)
    if bad is not None:
        raise QuestionnaireInvalid(
            f"{where_zh}含有不允许的字符（{text.code_point(bad)}）",
            f"{field} holds a character that is not accepted ({text.code_point(bad)})",
            field=field,
        )
    return value.strip()


def _ident(value: Any, field: str, taken: set[str]) -> str:
    if not isinstance(value, str) or not value or len(value) > ID_MAX or not value.isascii() or not value.isalnum():
        raise QuestionnaireInvalid(
            f"{field}需要1至{ID_MAX}位字母或数字", f"{field} needs 1 to {ID_MAX} letters or digits", field=field
        )
    if value in taken:
        raise QuestionnaireInvalid(f"{field}重复", f"{field} is used twice", field=field)
    taken.add(value)
    return value


def check_questionnaire(questions: Sequence[Mapping[str, Any]], pass_mark: int) -> list[dict[str, Any]]:
    """The questions in their stored form, or QuestionnaireInvalid naming the first fault."""
    if not 1 <= len(questions) <= MAX_QUESTIONS:
        raise QuestionnaireInvalid(
            f"问卷需要1至{MAX_QUESTIONS}道题", f"1 to {MAX_QUESTIONS} questions", field="questions"
        )
    stored: list[dict[str, Any]] = []
    question_ids: set[str] = set()
    for i, q in enumerate(questions):
        where = f"questions.{i}"
        extra = set(q) - {"id", "text_zh", "text_en", "multiple", "options", "correct"}
        if extra:
            raise QuestionnaireInvalid(
                f"第{i + 1}题有未知字段", f"question {i + 1} has unknown fields", field=f"{where}.{sorted(extra)[0]}"
            )
        qid = _ident(q.get("id"), f"{where}.id", question_ids)
        multiple = q.get("multiple", False)
        if not isinstance(multiple, bool):
            raise QuestionnaireInvalid(
                "multiple须为true或false", "multiple must be a boolean", field=f"{where}.multiple"
            )
        options = q.get("options")
        if not isinstance(options, list) or not 2 <= len(options) <= MAX_OPTIONS:
            raise QuestionnaireInvalid(
                f"第{i + 1}题需要2至{MAX_OPTIONS}个选项",
                f"question {i + 1} needs 2 to {MAX_OPTIONS} options",
                field=f"{where}.options",
            )
        option_ids: set[str] = set()
        stored_options = []
        for j, o in enumerate(options):
            if not isinstance(o, Mapping) or set(o) - {"id", "text_zh", "text_en"}:
                raise QuestionnaireInvalid(
                    f"第{i + 1}题第{j + 1}个选项有误",
                    f"option {j + 1} of question {i + 1} is malformed",
                    field=f"{where}.options.{j}",
                )
            stored_options.append(
                {
                    "id": _ident(o.get("id"), f"{where}.options.{j}.id", option_ids),
                    "text_zh": _text(o.get("text_zh"), f"{where}.options.{j}.text_zh", "选项"),
                    "text_en": _text(o.get("text_en", o.get("text_zh")), f"{where}.options.{j}.text_en", "选项"),
                }
            )
        correct = q.get("correct")
        if (
            not isinstance(correct, list)
            or not correct
            or len(set(correct)) != len(correct)
            or not all(isinstance(c, str) and c in option_ids for c in correct)
        ):
            raise QuestionnaireInvalid(
                f"第{i + 1}题的正确答案须为该题的选项",
                f"question {i + 1}'s correct answers must be its options",
                field=f"{where}.correct",
            )
        if not multiple and len(correct) != 1:
            raise QuestionnaireInvalid(
                f"第{i + 1}题为单选题，只能有一个正确答案",
                f"question {i + 1} is single-choice: one correct answer",
                field=f"{where}.correct",
            )
        stored.append(
            {
                "id": qid,
                "text_zh": _text(q.get("text_zh"), f"{where}.text_zh", "题目"),
                "text_en": _text(q.get("text_en", q.get("text_zh")), f"{where}.text_en", "题目"),
                "multiple": multiple,
                "options": stored_options,
                "correct": sorted(correct),
            }
        )
    if not 1 <= pass_mark <= len(stored):
        raise QuestionnaireInvalid(
            f"及格题数须在1至{len(stored)}之间", f"pass_mark must be 1 to {len(stored)}", field="pass_mark"
        )
    return stored


def public_questions(questions: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The questions as a respondent sees them: never the correct options."""
    return [{k: v for k, v in q.items() if k != "correct"} for q in questions]


def check_answers(questions: Sequence[Mapping[str, Any]], answers: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """The answers in canonical form (each question's options sorted), or AnswersInvalid: an unknown
    question or option, an option chosen twice, several options on a single-choice question."""
    by_id = {q["id"]: q for q in questions}
    canonical: dict[str, list[str]] = {}
    for qid, chosen in answers.items():
        question = by_id.get(qid)
        if question is None:
            raise AnswersInvalid("问卷中没有这道题", "No such question in this questionnaire", field=f"answers.{qid}")
        options = {o["id"] for o in question["options"]}
        if len(set(chosen)) != len(chosen) or not set(chosen) <= options:
            raise AnswersInvalid(
                "所选答案不是这道题的选项", "The chosen options are not this question's", field=f"answers.{qid}"
            )
        if not question["multiple"] and len(chosen) > 1:
            raise AnswersInvalid(
                "单选题只能选一个答案", "A single-choice question takes one option", field=f"answers.{qid}"
            )
        if chosen:
            canonical[qid] = sorted(chosen)
    return dict(sorted(canonical.items()))


def score(questions: Sequence[Mapping[str, Any]], answers: Mapping[str, Sequence[str]]) -> int:
    """How many questions the (checked) answers get exactly right."""
    return sum(1 for q in questions if sorted(answers.get(q["id"], ())) == sorted(q["correct"]))


def knows(points: int, pass_mark: int) -> bool:
    """Whether a score counts as knowing (知晓)."""
    return points >= pass_mark


def digest(answers: Mapping[str, Sequence[str]]) -> str:
    """The fingerprint of canonical answers: a resend carries the same one, a different body another."""
    return hashlib.sha256(json.dumps(answers, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
