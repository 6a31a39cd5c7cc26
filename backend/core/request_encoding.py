"""Request bodies sent with `Content-Encoding: gzip`, decoded as they stream in, with a bound.

Phones on 2G compress their pushes (a batch of visits shrinks about tenfold). Every request body
may be gzip-encoded; the application below sees it decoded, as if it had been sent plain, and never
knows the difference. What can go wrong is answered as a problem, never a 500:

- a body that would expand beyond `request_max_decompressed_bytes` (a compression bomb: a megabyte
  that inflates to a gigabyte) is refused with 413 `payload-too-large` as soon as the bound is
  passed; at no point is more than the bound held expanded;
- corrupt gzip (bad header or checksum, cut short, trailing bytes) is 400
  `request-body-encoding-invalid`;
- any other encoding (br, deflate, zstd, two layers) is 415 `request-body-encoding-unsupported`,
  with `Accept-Encoding: gzip` saying what is understood (RFC 7694).
"""

from __future__ import annotations

import zlib

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.core.errors import BadRequest, BodyRefused, DomainError, PayloadTooLarge, problem_response

_GZIP_WBITS = 16 + zlib.MAX_WBITS  # a gzip member (header and CRC-32 trailer), not raw or zlib
_GZIP = frozenset({"gzip", "x-gzip"})


class BodyEncodingInvalid(BadRequest):
    code = "request-body-encoding-invalid"
    title_zh = "请求内容的压缩格式有误"
    title_en = "The request body's encoding is invalid"


class BodyEncodingUnsupported(DomainError):
    code = "request-body-encoding-unsupported"
    status = 415
    title_zh = "不支持该压缩格式"
    title_en = "Unsupported request body encoding"


def _too_large(limit: int) -> PayloadTooLarge:
    mib = limit // (1024 * 1024)
    return PayloadTooLarge(
        f"解压后的内容超过上限 {limit} 字节（{mib} MB），请分批上传",
        f"The body expands beyond {limit} bytes ({mib} MB); send less at once",
        limit_bytes=limit,
    )


class _Gunzip:
    """Decodes one request's body chunk by chunk, never producing more than `limit` bytes in all."""

    def __init__(self, receive: Receive, limit: int) -> None:
        self.receive = receive
        self.limit = limit
        self.inflater = zlib.decompressobj(_GZIP_WBITS)
        self.expanded = 0
        self.received = 0

    def _inflate(self, data: bytes) -> bytes:
        parts: list[bytes] = []
        while data:
            if self.inflater.eof:  # RFC 1952 allows several members one after another
                self.inflater = zlib.decompressobj(_GZIP_WBITS)
            # One byte over the budget is enough to know the bound is passed: the rest of the input
            # is never inflated (it stays in unconsumed_tail and is dropped with the request).
            out = self.inflater.decompress(data, self.limit - self.expanded + 1)
            self.expanded += len(out)
            if self.expanded > self.limit:
                raise BodyRefused(_too_large(self.limit))
            parts.append(out)
            data = self.inflater.unused_data if self.inflater.eof else b""
        return b"".join(parts)

    async def __call__(self) -> Message:
        message = await self.receive()
        if message["type"] != "http.request":
            return message
        chunk = message.get("body", b"")
        more = message.get("more_body", False)
        self.received += len(chunk)
        # Compressed input cannot be smaller than a thousandth of what it inflates to, but a stream
        # of empty blocks inflates to nothing: bound what is read, too.
        if self.received > self.limit:
            raise BodyRefused(_too_large(self.limit))
        try:
            body = self._inflate(chunk)
        except zlib.error as exc:
            raise BodyRefused(_invalid(str(exc))) from exc
        if not more and self.received and not self.inflater.eof:
            raise BodyRefused(_invalid("incomplete gzip stream"))
        return {"type": "http.request", "body": body, "more_body": more}


def _invalid(reason: str) -> BodyEncodingInvalid:
    return BodyEncodingInvalid(
        "请求内容不是完整有效的 gzip 数据，请重新发送",
        f"The body is not complete, valid gzip ({reason}); send it again",
    )


class GzipRequestBodies:
    """ASGI middleware: decode `Content-Encoding: gzip` request bodies (see the module docstring)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = Headers(scope=scope).get("content-encoding")
        if header is None:
            await self.app(scope, receive, send)
            return
        codings = [c.strip().lower() for c in header.split(",") if c.strip().lower() not in ("", "identity")]
        if not codings:
            await self.app(scope, receive, send)
            return
        if len(codings) > 1 or codings[0] not in _GZIP:
            problem = BodyEncodingUnsupported(
                f"不支持的压缩格式“{header}”，请使用 gzip 或不压缩",
                f"Content-Encoding '{header}' is not supported; send gzip or no encoding",
                headers={"Accept-Encoding": "gzip"},
            )
            await problem_response(problem, Request(scope))(scope, receive, send)
            return
        # Below here the body is plain: its encoding and its (compressed) length no longer apply.
        scope["headers"] = [(k, v) for k, v in scope["headers"] if k not in (b"content-encoding", b"content-length")]
        await self.app(scope, _Gunzip(receive, self.max_bytes), send)
