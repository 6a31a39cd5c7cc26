"""The scoring rule and the rate roll-up, as properties (hypothesis)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.awareness import builtin, rates, scoring

LETTERS = "abcdef"


@st.composite
def questionnaires(draw: st.DrawFn) -> tuple[list[dict[str, Any]], int]:
    count = draw(st.integers(1, 12))
    questions = []
    for i in range(count):
        n_options = draw(st.integers(2, 6))
        options = [{"id": LETTERS[j], "text_zh": f"选项{j}", "text_en": f"option {j}"} for j in range(n_options)]
        multiple = draw(st.booleans())
        correct = (draw(st.lists(st.sampled_from(LETTERS[:n_options]), min_size=1, unique=True)) if multiple
                   else [draw(st.sampled_from(LETTERS[:n_options]))])
        questions.append({"id": f"q{i}", "text_zh": f"题目{i}", "multiple": multiple, "options": options,
                          "correct": correct})
    pass_mark = draw(st.integers(1, count))
    return scoring.check_questionnaire(questions, pass_mark), pass_mark


@st.composite
def sheets(draw: st.DrawFn, questions: list[dict[str, Any]]) -> dict[str, list[str]]:
    answers: dict[str, list[str]] = {}
    for q in questions:
        ids = [o["id"] for o in q["options"]]
        if draw(st.booleans()):
            continue  # skipped
        picked = (draw(st.lists(st.sampled_from(ids), unique=True, max_size=len(ids))) if q["multiple"]
                  else [draw(st.sampled_from(ids))])
        answers[q["id"]] = picked
    return answers


@given(st.data(), questionnaires())
def test_a_score_counts_the_questions_answered_exactly_right(data: st.DataObject,
                                                             made: tuple[list[dict[str, Any]], int]) -> None:
    questions, pass_mark = made
    answers = scoring.check_answers(questions, data.draw(sheets(questions)))
    points = scoring.score(questions, answers)
    assert 0 <= points <= len(questions)
    assert points == sum(set(answers.get(q["id"], [])) == set(q["correct"]) for q in questions)
    assert scoring.knows(points, pass_mark) == (points >= pass_mark)


@given(questionnaires())
def test_the_correct_sheet_scores_full_and_knows(made: tuple[list[dict[str, Any]], int]) -> None:
    questions, pass_mark = made
    right = {q["id"]: list(reversed(q["correct"])) for q in questions}  # order of choices does not matter
    assert scoring.score(questions, scoring.check_answers(questions, right)) == len(questions)
    assert scoring.knows(len(questions), pass_mark)
    assert scoring.score(questions, {}) == 0 and not scoring.knows(0, pass_mark)


@given(st.data(), questionnaires())
def test_spoiling_one_right_answer_costs_exactly_one_point(data: st.DataObject,
                                                           made: tuple[list[dict[str, Any]], int]) -> None:
    questions, _ = made
    right = {q["id"]: q["correct"] for q in questions}
    victim = data.draw(st.sampled_from(questions))
    ids = [o["id"] for o in victim["options"]]
    wrong = data.draw(st.sampled_from([[i] for i in ids if [i] != victim["correct"]] + [[]]))
    spoiled = {**right, victim["id"]: wrong}
    assert scoring.score(questions, scoring.check_answers(questions, spoiled)) == len(questions) - 1


@given(st.data(), questionnaires())
def test_a_sheet_and_its_reordering_share_a_digest(data: st.DataObject,
                                                   made: tuple[list[dict[str, Any]], int]) -> None:
    questions, _ = made
    answers = data.draw(sheets(questions))
    shuffled = {k: list(reversed(v)) for k, v in reversed(list(answers.items()))}
    assert scoring.digest(scoring.check_answers(questions, answers)) == \
        scoring.digest(scoring.check_answers(questions, shuffled))


@given(questionnaires())
def test_respondents_never_see_the_correct_options(made: tuple[list[dict[str, Any]], int]) -> None:
    assert all("correct" not in q for q in scoring.public_questions(made[0]))


def test_the_national_questionnaire_is_valid_and_passes_at_seven_of_eight() -> None:
    stored = scoring.check_questionnaire(builtin.questions(), builtin.PASS_MARK)
    assert len(stored) == 8 and builtin.PASS_MARK == 7


@pytest.mark.parametrize(("questions", "pass_mark", "field"), [
    ([], 1, "questions"),
    ([{"id": "q", "text_zh": "题", "options": [{"id": "a", "text_zh": "甲"}], "correct": ["a"]}], 1,
     "questions.0.options"),
    ([{"id": "q", "text_zh": "题", "options": [{"id": "a", "text_zh": "甲"}, {"id": "b", "text_zh": "乙"}],
       "correct": ["a", "b"]}], 1, "questions.0.correct"),  # two correct on a single-choice question
    ([{"id": "q", "text_zh": "题", "options": [{"id": "a", "text_zh": "甲"}, {"id": "b", "text_zh": "乙"}],
       "correct": ["c"]}], 1, "questions.0.correct"),
    ([{"id": "q", "text_zh": "\u200b ", "options": [{"id": "a", "text_zh": "甲"}, {"id": "b", "text_zh": "乙"}],
       "correct": ["a"]}], 1, "questions.0.text_zh"),  # says nothing
    ([{"id": "q", "text_zh": "题", "options": [{"id": "a", "text_zh": "甲"}, {"id": "a", "text_zh": "乙"}],
       "correct": ["a"]}], 1, "questions.0.options.1.id"),
    ([{"id": "q", "text_zh": "题", "options": [{"id": "a", "text_zh": "甲"}, {"id": "b", "text_zh": "乙"}],
       "correct": ["a"]}], 2, "pass_mark"),
])
def test_faulty_questionnaires_are_refused_naming_the_field(questions: list[dict[str, Any]], pass_mark: int,
                                                            field: str) -> None:
    with pytest.raises(scoring.QuestionnaireInvalid) as refused:
        scoring.check_questionnaire(questions, pass_mark)
    assert refused.value.extensions["field"] == field


# ------------------------------------------------------------------ the roll-up

figures = st.lists(st.builds(
    lambda school, group, students, surveyed, responses, knowing_share: rates.SchoolFigure(
        school, group, students, school * 10 if surveyed else None,
        responses if surveyed else 0, (responses * knowing_share // 100) if surveyed else 0),
    st.integers(1, 10_000), st.integers(1, 5), st.integers(0, 2000), st.booleans(), st.integers(0, 2000),
    st.integers(0, 100)), max_size=40, unique_by=lambda f: f.institution_id)


@settings(max_examples=200)
@given(figures)
def test_units_add_up_to_the_total_and_rates_weigh_respondents(school_figures: list[rates.SchoolFigure]) -> None:
    total, by_group = rates.roll_up(school_figures, [1, 2, 3, 4, 5])
    assert set(by_group) == {1, 2, 3, 4, 5}  # every child unit listed, even without a school
    for attr in ("schools", "schools_surveyed", "students", "responses", "knowing"):
        assert getattr(total, attr) == sum(getattr(t, attr) for t in by_group.values())
    assert sorted(total.without_survey) == sorted(f.institution_id for f in school_figures if f.round_id is None)
    public = total.public()
    surveyed = [f for f in school_figures if f.round_id is not None]
    responses = sum(f.responses for f in surveyed)
    assert public["rate"] == (None if responses == 0 else round(sum(f.knowing for f in surveyed) / responses, 4))
    assert public["rate"] is None or 0 <= public["rate"] <= 1
    # One right answer from a school of 300 is not the school's awareness: enough of them must answer.
    # ... at every school: one school's extra answers do not cover another's missing ones.
    enough = all(f.responses >= rates.MIN_PARTICIPATION * f.students for f in surveyed)
    capped = sum(min(f.responses, f.students) for f in surveyed)
    students = sum(f.students for f in school_figures)
    assert public["participation"] == (None if students == 0 else round(capped / students, 4))
    assert public["meets_target"] == (responses > 0 and public["rate"] == 1.0 and len(surveyed) == len(school_figures)
                                      and enough)


@given(st.lists(st.builds(rates.RoundSeen, st.integers(1, 5), st.integers(1, 10_000),
                          st.datetimes(datetime(2026, 1, 1), datetime(2026, 12, 31)), st.integers(1, 6), st.booleans()),
                max_size=30, unique_by=lambda r: r.round_id))
def test_a_school_counts_with_the_highest_openers_latest_closed_round(rounds: list[rates.RoundSeen]) -> None:
    counted = rates.counted_rounds(rounds)
    assert set(counted) == {r.institution_id for r in rounds}
    for school, chosen in counted.items():
        mine = [r for r in rounds if r.institution_id == school]
        picked = next(r for r in mine if r.round_id == chosen)
        # No round of a higher unit exists: a lower unit's round never replaces a higher unit's figure.
        assert picked.opener_depth == min(r.opener_depth for r in mine)
        peers = [r for r in mine if r.opener_depth == picked.opener_depth]
        # An open round counts only while its unit has no closed one; then the latest counts.
        assert picked.closed or not any(r.closed for r in peers)
        assert (picked.opened_at, picked.round_id) == max((r.opened_at, r.round_id) for r in peers
                                                          if r.closed == picked.closed)


@given(st.integers(2000, 2100), st.sampled_from(["", "-H1", "-H2", "-Q1", "-Q2", "-Q3", "-Q4", "-01", "-02", "-12"]))
def test_periods_are_whole_ranges_of_china_dates(year: int, suffix: str) -> None:
    found = rates.period_range(f"{year}{suffix}")
    assert found is not None
    first, last = found
    assert first.day == 1 and first.year == year and last.year == year
    assert (last + timedelta(days=1)).day == 1  # ends on a month's last day


@pytest.mark.parametrize("bad", ["26", "2026-", "2026-13", "2026-Q5", "2026-H3", "1999", "2026/05", "abcd"])
def test_malformed_periods_are_none(bad: str) -> None:
    assert rates.period_range(bad) is None


def test_year_period_is_the_calendar_year() -> None:
    assert rates.period_range("2026") == (date(2026, 1, 1), date(2026, 12, 31))
    assert rates.period_range("2028-02") == (date(2028, 2, 1), date(2028, 2, 29))
