"""RFC 9457 problem+json: one exception family, one handler, stable type codes, zh-CN or en.

Services raise a DomainError subclass; they never build HTTP responses. The `type` URI and the
`code` member are a contract with the phones: once published, a code keeps its meaning.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, Any, ClassVar

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

PROBLEM_TYPE_PREFIX = "urn:hulei:problem:"
PROBLEM_MEDIA_TYPE = "application/problem+json"


def negotiate_locale(accept_language: str | None) -> str:
    """'en' when the client prefers English, otherwise 'zh-CN' (the field default)."""
    if not accept_language:
        return "zh-CN"
    best, best_q = "zh-CN", -1.0
    for part in accept_language.split(","):
        pieces = part.strip().split(";")
        tag = pieces[0].strip().lower()
        q = 1.0
        for p in pieces[1:]:
            p = p.strip()
            if p.startswith("q="):
                try:
                    q = float(p[2:])
                except ValueError:
                    q = 0.0
        if tag.startswith("en") and q > best_q:
            best, best_q = "en", q
        elif tag.startswith("zh") and q > best_q:
            best, best_q = "zh-CN", q
    return best


def request_locale(request: Request) -> str:
    """The caller's language for messages built before the answer is rendered (validation lists)."""
    return negotiate_locale(request.headers.get("accept-language"))


Locale = Annotated[str, Depends(request_locale)]


# The members every problem document defines; an error's extensions never replace them.
RESERVED_MEMBERS = frozenset({"type", "code", "title", "status", "detail", "instance"})


class DomainError(Exception):
    """Base of every error a client may see. Subclasses set code, status and titles."""

    code: ClassVar[str] = "internal-error"
    status: ClassVar[int] = 500
    title_zh: ClassVar[str] = "服务器内部错误"
    title_en: ClassVar[str] = "Internal server error"

    def __init__(
        self,
        detail_zh: str | None = None,
        detail_en: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        aftermath: Aftermath | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail_en or detail_zh or self.title_en)
        taken = RESERVED_MEMBERS & extensions.keys()
        if taken:
            # RFC 9457's members keep their meaning (`status` is the HTTP code a phone reads as a number):
            # a record's state goes under another name (`current_status`).
            raise TypeError(f"{type(self).__name__}: extension members {sorted(taken)} are RFC 9457's own")
        self.detail_zh = detail_zh
        self.detail_en = detail_en
        self.headers = headers or {}
        self.extensions = extensions
        # Writes that must outlive the refused operation (its audit entry, a notification): run by
        # whoever undoes the operation, after undoing it (run_aftermath).
        self.aftermath = aftermath

    def to_problem(self, locale: str, instance: str | None = None) -> dict[str, Any]:
        """The problem document in the given locale."""
        english = locale == "en"
        body: dict[str, Any] = {
            "type": PROBLEM_TYPE_PREFIX + self.code,
            "code": self.code,
            "title": self.title_en if english else self.title_zh,
            "status": self.status,
        }
        detail = (self.detail_en or self.detail_zh) if english else (self.detail_zh or self.detail_en)
        if detail:
            body["detail"] = detail
        if instance:
            body["instance"] = instance
        body.update(self.extensions)
        return body


# Work kept although the operation that raised is undone; it receives the database session.
Aftermath = Callable[[Any], None]


def run_aftermath(session: Any, exc: BaseException) -> None:
    """Run a refused operation's aftermath in `session`, after the operation was rolled back, in a
    savepoint: if it fails, it is logged and undone alone, and the caller still gets the refusal it
    would have got (its answer must not depend on what the aftermath did)."""
    aftermath = exc.aftermath if isinstance(exc, DomainError) else None
    if aftermath is None:
        return
    try:
        with session.begin_nested():
            aftermath(session)
    except Exception:
        log.exception("the aftermath of %s failed", type(exc).__name__)


class NotFound(DomainError):
    code = "not-found"
    status = 404
    title_zh = "未找到"
    title_en = "Not found"


class Forbidden(DomainError):
    code = "forbidden"
    status = 403
    title_zh = "无权执行此操作"
    title_en = "Not allowed"


class Unauthenticated(DomainError):
    code = "unauthenticated"
    status = 401
    title_zh = "请先登录"
    title_en = "Authentication required"


class Conflict(DomainError):
    code = "conflict"
    status = 409
    title_zh = "与已有数据冲突"
    title_en = "Conflict with stored data"


class InvalidInput(DomainError):
    code = "invalid-input"
    status = 422
    title_zh = "输入有误"
    title_en = "Invalid input"


class TooManyRequests(DomainError):
    code = "too-many-requests"
    status = 429
    title_zh = "请求过于频繁"
    title_en = "Too many requests"


class ServiceUnavailable(DomainError):
    code = "service-unavailable"
    status = 503
    title_zh = "服务暂不可用"
    title_en = "Service unavailable"


class DatabaseUnavailable(ServiceUnavailable):
    """The database did not answer (restarting, failing over, unreachable). The request may have been
    cut off around its commit, so whether it was stored is unknown to the client; sending it again
    later is safe because the phones' writes are keyed by their client UUIDs."""

    code = "database-unavailable"
    title_zh = "数据库暂不可用，请稍后重试"
    title_en = "Database unavailable; try again shortly"


# Seconds a client is asked to wait before retrying when the database is away.
DATABASE_RETRY_AFTER_SECONDS = 5


class PayloadTooLarge(DomainError):
    code = "payload-too-large"
    status = 413
    title_zh = "提交内容过大"
    title_en = "Payload too large"


_HTTP_STATUS_PROBLEMS: dict[int, type[DomainError]] = {
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    429: TooManyRequests,
    503: ServiceUnavailable,
}


class MethodNotAllowed(DomainError):
    code = "method-not-allowed"
    status = 405
    title_zh = "不支持该请求方法"
    title_en = "Method not allowed"


class BadRequest(DomainError):
    code = "bad-request"
    status = 400
    title_zh = "请求格式有误"
    title_en = "Bad request"


class UnstorableValue(InvalidInput):
    """The database refused a value the request schemas let through: a number beyond its integer
    columns, text longer than its column, a NUL character (PostgreSQL) or a lone surrogate. It came
    from the client, so it is the client's 422, not a server fault."""

    def __init__(self) -> None:
        super().__init__(
            "提交的内容含有无法保存的值：数字超出范围、文字过长或含有不允许的字符",
            "A value cannot be stored: a number out of range, text too long, or a character not allowed",
        )


# PostgreSQL SQLSTATEs for a value that does not fit its column: numeric_value_out_of_range,
# string_data_right_truncation, character_not_in_repertoire, untranslatable_character.
_UNSTORABLE_SQLSTATES = frozenset({"22003", "22001", "22021", "22P05"})


class BodyRefused(StarletteHTTPException):
    """A problem found while the application reads the request body, raised by a middleware that
    checks the body on its way in (gzip bounds, unstorable text). FastAPI lets an HTTPException out
    of its body parsing unchanged (any other exception there becomes a bare 400); the handler
    installed below answers with the problem it carries."""

    def __init__(self, problem: DomainError) -> None:
        super().__init__(problem.status, problem.detail_en or problem.title_en, headers=problem.headers or None)
        self.problem = problem


def is_unstorable_value(exc: BaseException) -> bool:
    """Whether `exc` is the database driver refusing a client's value (rather than a server fault)."""
    if isinstance(exc, DataError):
        sqlstate = getattr(exc.orig, "sqlstate", None)
        # psycopg refuses NUL in text itself, before PostgreSQL sees it, with no SQLSTATE.
        return sqlstate in _UNSTORABLE_SQLSTATES or (sqlstate is None and "NUL (0x00)" in str(exc.orig))
    if isinstance(exc, OverflowError):
        return "too large to convert to SQLite INTEGER" in str(exc)
    if isinstance(exc, UnicodeEncodeError):
        # Python's json accepts "\ud800" escapes; such text cannot be encoded for any database.
        return exc.reason == "surrogates not allowed"
    return False


_HTTP_STATUS_PROBLEMS[405] = MethodNotAllowed
_HTTP_STATUS_PROBLEMS[400] = BadRequest

_VALIDATION_ZH = {
    "missing": "缺少必填项",
    "string_too_short": "内容过短",
    "string_too_long": "内容过长",
    "string_pattern_mismatch": "格式不正确",
    "int_parsing": "应为整数",
    "float_parsing": "应为数字",
    "bool_parsing": "应为是/否",
    "uuid_parsing": "应为UUID",
    "datetime_parsing": "应为日期时间",
    "datetime_from_date_parsing": "应为日期时间",
    "date_from_datetime_parsing": "应为日期",
    "enum": "不在可选值范围内",
    "literal_error": "不在可选值范围内",
    "greater_than_equal": "数值过小",
    "less_than_equal": "数值过大",
    "greater_than": "数值过小",
    "less_than": "数值过大",
    "too_long": "条目过多",
    "too_short": "条目过少",
    "json_invalid": "JSON格式错误",
    "value_error": "取值无效",
    "extra_forbidden": "不允许的字段",
}


def problem_response(
    problem: DomainError, request: Request, headers: dict[str, str] | None = None
) -> JSONResponse:
    """Render a DomainError for this request's language."""
    locale = negotiate_locale(request.headers.get("accept-language"))
    all_headers = {"Content-Language": locale, **problem.headers, **(headers or {})}
    return JSONResponse(
        problem.to_problem(locale, instance=request.url.path),
        status_code=problem.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=all_headers,
    )


def validation_problem(errors: list[dict[str, Any]], locale: str) -> InvalidInput:
    """A 422 problem that lists each bad field with a message a person can act on."""
    items = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body",)]
        zh = _VALIDATION_ZH.get(str(err.get("type")), "取值无效")
        items.append(
            {
                "field": ".".join(loc),
                "type": err.get("type"),
                "message": err.get("msg") if locale == "en" else zh,
            }
        )
    fields = ", ".join(i["field"] for i in items if i["field"])
    return InvalidInput(
        f"请检查以下字段：{fields}" if fields else "请求内容无效",
        f"Check these fields: {fields}" if fields else "The request body is invalid",
        errors=items,
    )


# The answer every operation may give besides its documented success: the shape of
# DomainError.to_problem and validation_problem, as JSON Schema for the OpenAPI document.
PROBLEM_SCHEMAS: dict[str, dict[str, Any]] = {
    "ProblemDetails": {
        "title": "ProblemDetails",
        "description": "RFC 9457 problem details; `code` is stable (mobile_api_spec/problems.md).",
        "type": "object",
        "required": ["type", "code", "title", "status"],
        "properties": {
            "type": {"type": "string", "description": f"{PROBLEM_TYPE_PREFIX}<code>"},
            "code": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string"},
            "instance": {"type": "string"},
            # A field of a request body, or a row of an uploaded sheet (ledger and venue imports).
            "errors": {"type": "array", "items": {"anyOf": [{"$ref": "#/components/schemas/ProblemFieldError"},
                                                            {"$ref": "#/components/schemas/ProblemRowError"}]}},
        },
        # Some problems carry extension members (the refused action, a retry time, ...).
        "additionalProperties": True,
    },
    "ProblemFieldError": {
        "title": "ProblemFieldError",
        "type": "object",
        "required": ["field", "type", "message"],
        "properties": {
            "field": {"type": "string"},
            "type": {"type": "string"},
            "message": {"type": "string"},
        },
    },
    "ProblemRowError": {
        "title": "ProblemRowError",
        "description": "A refused row of an uploaded sheet: its row and column (null: the whole file) and why.",
        "type": "object",
        "required": ["reason"],
        "properties": {
            "row": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            "column": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "reason": {"type": "string"},
        },
    },
}


def document_problems(openapi: dict[str, Any]) -> dict[str, Any]:
    """Declare problem+json answers in an OpenAPI document, in place (idempotent).

    Every operation gets a `default` problem response, and the 422 FastAPI documents as
    application/json gains the problem+json body the app really sends. The application/json
    entry stays so the published contract only grows.
    """
    openapi.setdefault("components", {}).setdefault("schemas", {}).update(PROBLEM_SCHEMAS)
    problem = {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}
    for path_item in openapi.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            responses.setdefault("default", {
                "description": "Problem details (RFC 9457); codes in mobile_api_spec/problems.md",
                "content": {PROBLEM_MEDIA_TYPE: problem},
            })
            if "422" in responses:
                responses["422"].setdefault("content", {})[PROBLEM_MEDIA_TYPE] = problem
    return openapi


def install_problem_handlers(app: FastAPI) -> None:
    """Route every error the app can raise through problem+json."""

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        return problem_response(exc, request)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        locale = negotiate_locale(request.headers.get("accept-language"))
        return problem_response(validation_problem(list(exc.errors()), locale), request)

    @app.exception_handler(BodyRefused)
    async def _body_refused(request: Request, exc: BodyRefused) -> JSONResponse:
        return problem_response(exc.problem, request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        cls = _HTTP_STATUS_PROBLEMS.get(exc.status_code, DomainError)
        problem = cls()
        if cls is DomainError:
            problem = DomainError(str(exc.detail), str(exc.detail))
        return problem_response(problem, request, headers=dict(exc.headers or {}))

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    @app.exception_handler(PoolTimeout)
    async def _database(request: Request, exc: Exception) -> JSONResponse:
        # Connection lost or refused, server shutting down, lock or pool timeout: transient by
        # nature, so the phone is told to retry rather than shown a server fault.
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path,
                    str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return problem_response(DatabaseUnavailable(headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)}),
                                request)

    @app.exception_handler(DataError)
    @app.exception_handler(OverflowError)
    @app.exception_handler(UnicodeEncodeError)
    async def _unstorable(request: Request, exc: Exception) -> JSONResponse:
        if not is_unstorable_value(exc):
            raise exc  # a server fault after all: on to the 500 handler
        log.info("unstorable value on %s %s: %s", request.method, request.url.path,
                 str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return problem_response(UnstorableValue(), request)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(DomainError(), request)
