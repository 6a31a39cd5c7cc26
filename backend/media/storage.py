"""Where photo bytes live: one interface, a local directory (default) or an S3-compatible server.

Keys: originals under "originals/", derivatives under "derived/". Nothing is public. Derivatives
are downloaded through short-lived signed links; originals are never linked (they carry the home's
GPS) and are served only through the authenticated, audited original endpoint.

Upload staging (resumable chunks) is always a local directory, `media_root/staging`, whichever
backend holds the finished objects: several API processes must share it (a common volume).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import tempfile
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from backend.core.config import get_settings
from backend.core.secrets import Purpose, purpose_key

ORIGINALS_PREFIX = "originals/"
DERIVED_PREFIX = "derived/"
LOCAL_FILES_PATH = "/api/v1/media-files/"


class Storage(ABC):
    """Object storage for media."""

    name: str

    @abstractmethod
    def put_file(self, key: str, path: Path, content_type: str) -> None:
        """Store the file's bytes under `key` (replacing any object there)."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        """Store `data` under `key`."""

    @abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """The object's bytes; FileNotFoundError when missing."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether an object is stored under `key`."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object (no error when it is already gone)."""

    @abstractmethod
    def signed_url(self, key: str, *, expires_at: datetime, content_type: str, filename: str) -> str:
        """A URL that fetches the object without other credentials until `expires_at`."""


def _write_atomically(target: Path, write: Any) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _link_key() -> bytes:
    return purpose_key(Purpose.media_link)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class LinkClaims:
    key: str
    expires: int
    content_type: str
    filename: str


def sign_link(claims: LinkClaims) -> str:
    """A token naming one object until a time, signed with the server's key."""
    body = json.dumps(
        {"k": claims.key, "e": claims.expires, "t": claims.content_type, "f": claims.filename},
        separators=(",", ":"),
    ).encode()
    mac = hmac.new(_link_key(), body, hashlib.sha256).digest()
    return f"{_b64(body)}.{_b64(mac)}"


def read_link(token: str) -> LinkClaims | None:
    """The claims of a genuine token (expired or not), None for anything forged or malformed."""
    try:
        body_text, mac_text = token.split(".", 1)
        body = _unb64(body_text)
        if not hmac.compare_digest(hmac.new(_link_key(), body, hashlib.sha256).digest(), _unb64(mac_text)):
            return None
        raw = json.loads(body)
        return LinkClaims(key=str(raw["k"]), expires=int(raw["e"]), content_type=str(raw["t"]),
                          filename=str(raw["f"]))
    except (ValueError, KeyError, TypeError):
        return None


class LocalStorage(Storage):
    """Objects as files under a directory; links are signed tokens served by the API."""

    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def path_of(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise ValueError(f"bad storage key: {key!r}")
        return path

    def put_file(self, key: str, path: Path, content_type: str) -> None:
        def copy(fh: Any) -> None:
            with path.open("rb") as src:
                while block := src.read(1 << 20):
                    fh.write(block)

        _write_atomically(self.path_of(key), copy)

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        _write_atomically(self.path_of(key), lambda fh: fh.write(data))

    def get_bytes(self, key: str) -> bytes:
        return self.path_of(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self.path_of(key).is_file()

    def delete(self, key: str) -> None:
        self.path_of(key).unlink(missing_ok=True)

    def signed_url(self, key: str, *, expires_at: datetime, content_type: str, filename: str) -> str:
        token = sign_link(LinkClaims(key, int(expires_at.timestamp()), content_type, filename))
        return LOCAL_FILES_PATH + token


class S3Storage(Storage):
    """Objects in a private bucket of an S3-compatible server; links are presigned GETs."""

    name = "s3"

    def __init__(
        self,
        *,
        endpoint: str | None,
        bucket: str,
        access_key: str | None,
        secret_key: str | None,
        region: str,
    ) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.client: Any = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name=region,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                          retries={"max_attempts": 3, "mode": "standard"}),
        )

    def ensure_bucket(self) -> None:
        """Create the bucket when it does not exist (deployment and tests)."""
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            self.client.create_bucket(Bucket=self.bucket)

    def put_file(self, key: str, path: Path, content_type: str) -> None:
        with path.open("rb") as fh:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=fh, ContentType=content_type)

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)

    def get_bytes(self, key: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise FileNotFoundError(key) from exc
            raise
        return bytes(response["Body"].read())

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return False
            raise
        return True

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def signed_url(self, key: str, *, expires_at: datetime, content_type: str, filename: str) -> str:
        from backend.core import clock

        seconds = max(1, int((expires_at - clock.now()).total_seconds()))
        url: str = self.client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": key,
                "ResponseContentType": content_type,
                "ResponseContentDisposition": f'inline; filename="{filename}"',
                "ResponseCacheControl": "private, max-age=300",
            },
            ExpiresIn=seconds,
        )
        return url


@lru_cache(maxsize=4)
def _build(kind: str, root: str, endpoint: str | None, bucket: str, access_key: str | None,
           secret_key: str | None, region: str) -> Storage:
    if kind == "s3":
        return S3Storage(endpoint=endpoint, bucket=bucket, access_key=access_key, secret_key=secret_key,
                         region=region)
    return LocalStorage(Path(root) / "objects")


def get_storage() -> Storage:
    """The configured storage backend."""
    s = get_settings()
    return _build(s.media_storage, str(s.media_root), s.media_s3_endpoint, s.media_s3_bucket,
                  s.media_s3_access_key, s.media_s3_secret_key, s.media_s3_region)


def staging_dir() -> Path:
    """Local directory for chunks of uploads in progress."""
    path = get_settings().media_root / "staging"
    path.mkdir(parents=True, exist_ok=True)
    return path
