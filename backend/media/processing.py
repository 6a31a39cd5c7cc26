"""Pillow work on photos: judging uploaded bytes cheaply, reading EXIF robustly, and making
stripped derivatives fast (JPEG draft mode decodes at the smallest DCT scale that still covers
the display size).

Two stages, on purpose:
- `check_upload` runs in the request: size, magic bytes, header parse, pixel count, and a cheap
  integrity pass (PNG: verify() walks every chunk CRC; JPEG: a 1/8-scale DCT decode, which reads
  every entropy-coded byte, so a truncated file fails here). No full-size decode.
- `make_derivatives` runs in the worker: the real decode, orientation, resizing, re-encoding.
"""

from __future__ import annotations

import io
import logging
import math
import re
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo

from PIL import Image, ImageFile, ImageOps, PngImagePlugin

from backend.media.errors import MediaCorrupt, MediaEmpty, MediaTooLarge, MediaTooManyPixels, MediaUnsupportedType

log = logging.getLogger(__name__)

DISPLAY_SIZE = 1600
THUMBNAIL_SIZE = 320
DISPLAY_QUALITY = 82
THUMBNAIL_QUALITY = 75
DERIVED_CONTENT_TYPE = "image/jpeg"

# Never decode past the end of the data, never let a PNG text chunk inflate past 1 MB.
PNG_MAX_TEXT_CHUNK = 1024 * 1024


def _harden_pillow() -> None:
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    PngImagePlugin.MAX_TEXT_CHUNK = PNG_MAX_TEXT_CHUNK


_harden_pillow()

try:  # HEIC/HEIF only where pillow-heif is installed.
    import pillow_heif  # type: ignore[import-not-found, unused-ignore]

    pillow_heif.register_heif_opener()
    HEIF_AVAILABLE = True
except ImportError:
    HEIF_AVAILABLE = False

CONTENT_TYPES: dict[str, str] = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
if HEIF_AVAILABLE:
    CONTENT_TYPES["HEIF"] = "image/heic"

_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"}
# Recognised but refused, so the refusal can say what was sent.
_KNOWN_OTHERS: list[tuple[bytes, str]] = [
    (b"GIF87a", "image/gif"), (b"GIF89a", "image/gif"), (b"BM", "image/bmp"), (b"%PDF", "application/pdf"),
    (b"II*\x00", "image/tiff"), (b"MM\x00*", "image/tiff"), (b"PK\x03\x04", "application/zip"),
]


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_pixels: int

    def header(self) -> str:
        """Value of the X-Hulei-Upload-Limits response header."""
        types = " ".join(sorted(CONTENT_TYPES.values()))
        return f'max-bytes={self.max_bytes}, max-pixels={self.max_pixels}, types="{types}"'


def sniff(head: bytes) -> str | None:
    """The accepted format these leading bytes belong to, or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if HEIF_AVAILABLE and head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "HEIF"
    return None


def describe(head: bytes) -> str:
    """A short name for refused content (for the problem detail)."""
    for magic, name in _KNOWN_OTHERS:
        if head.startswith(magic):
            return name
    if head[4:8] == b"ftyp":
        return "image/heic" if head[8:12] in _HEIF_BRANDS else "video/mp4"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "application/octet-stream"
    return "text/plain"


@dataclass(frozen=True)
class Checked:
    format: str
    content_type: str
    width: int
    height: int


def refuse_size(size: int, limits: Limits) -> None:
    """Refuse an empty body or one over the byte limit (before reading it all)."""
    if size == 0:
        raise MediaEmpty("上传内容为空（0 字节）", "The body is empty (0 bytes)", received_bytes=0)
    if size > limits.max_bytes:
        mb = limits.max_bytes / (1024 * 1024)
        raise MediaTooLarge(
            f"照片 {size} 字节，超过上限 {limits.max_bytes} 字节（{mb:g} MB），请压缩后重传",
            f"The photo is {size} bytes; the limit is {limits.max_bytes} bytes ({mb:g} MB). "
            "Send a smaller photo.",
            limit_bytes=limits.max_bytes,
            received_bytes=size,
        )


def _too_many_pixels(limits: Limits, width: int | None, height: int | None,
                     pixels: int | None = None) -> MediaTooManyPixels:
    if width is not None and height is not None:
        pixels = width * height
    size_text = f"{width}x{height}" if width is not None else str(pixels or "?")
    return MediaTooManyPixels(
        f"照片 {size_text} 像素，超过上限 {limits.max_pixels} 像素",
        f"The photo is {size_text} pixels; the limit is {limits.max_pixels} pixels",
        limit_pixels=limits.max_pixels,
        received_pixels=pixels,
        received_width=width,
        received_height=height,
    )


def _corrupt(reason: str) -> MediaCorrupt:
    return MediaCorrupt(f"照片文件无法读取：{reason}", f"The photo cannot be read: {reason}", reason=reason)


def check_upload(path: Path, limits: Limits) -> Checked:
    """Judge a complete upload by its bytes; raise a MediaRefused subclass when it is not a photo
    we take. Never decodes at full size."""
    size = path.stat().st_size
    refuse_size(size, limits)
    with path.open("rb") as fh:
        head = fh.read(32)
    fmt = sniff(head)
    if fmt is None:
        kind = describe(head)
        accepted = ", ".join(sorted(CONTENT_TYPES.values()))
        raise MediaUnsupportedType(
            f"文件内容为 {kind}，只接受 {accepted}",
            f"The content is {kind}; only {accepted} are accepted",
            received_type=kind,
            accepted_types=sorted(CONTENT_TYPES.values()),
        )
    Image.MAX_IMAGE_PIXELS = limits.max_pixels
    width: int | None = None
    height: int | None = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=[fmt]) as im:
                width, height = im.size
                if width <= 0 or height <= 0:
                    raise _corrupt("image has no pixels")
                if width * height > limits.max_pixels:
                    raise _too_many_pixels(limits, width, height)
                if fmt == "JPEG":
                    im.draft(None, (max(1, width // 8), max(1, height // 8)))
                    im.load()
                else:
                    im.verify()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow refuses in open(), before we see the size; its message carries the pixel count.
        declared = re.search(r"\((\d+) pixels\)", str(exc))
        raise _too_many_pixels(limits, width, height, int(declared.group(1)) if declared else None) from exc
    except (MediaTooManyPixels, MediaCorrupt):
        raise
    except ValueError as exc:
        if "MAX_TEXT_CHUNK" in str(exc) or "MAX_TEXT_MEMORY" in str(exc):
            raise _corrupt(f"metadata chunk inflates beyond {PNG_MAX_TEXT_CHUNK} bytes") from exc
        raise _corrupt(str(exc)[:200]) from exc
    except Exception as exc:  # any decoder failure on hostile bytes is "damaged", not a crash
        raise _corrupt(str(exc)[:200] or type(exc).__name__) from exc
    assert width is not None and height is not None
    return Checked(format=fmt, content_type=CONTENT_TYPES[fmt], width=width, height=height)


# --- EXIF ------------------------------------------------------------------------------------

GPS_IFD = 0x8825
EXIF_IFD = 0x8769
ORIENTATION = 0x0112
DATETIME_ORIGINAL = 0x9003
OFFSET_TIME_ORIGINAL = 0x9011


@dataclass(frozen=True)
class PhotoMetadata:
    lon: float | None = None
    lat: float | None = None
    alt_m: float | None = None
    gps_at: datetime | None = None
    taken_at: datetime | None = None
    orientation: int | None = None
    problems: list[str] = field(default_factory=list)


def _number(value: Any) -> float | None:
    """A finite float from an EXIF rational (IFDRational, (num, den) pair or number), else None.
    Zero denominators give NaN in Pillow (or ZeroDivisionError): both are treated as missing."""
    try:
        if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int) for v in value):
            result = value[0] / value[1]
        else:
            result = float(value)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    return result if math.isfinite(result) else None


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.split(b"\x00", 1)[0].decode("ascii", "replace")
    if isinstance(value, str):
        return value.strip("\x00 ").strip() or None
    return None


def _degrees(value: Any, ref: Any, positive: str, negative: str, bound: float) -> float | None:
    """Degrees from EXIF (deg, min, sec) and a hemisphere reference; None unless all is sane."""
    hemisphere = (_text(ref) or "").upper()[:1]
    if hemisphere not in (positive, negative):
        return None
    if isinstance(value, tuple | list):
        parts = [_number(v) for v in value]
        if not 1 <= len(parts) <= 3 or any(p is None for p in parts):
            return None
        nums = [p for p in parts if p is not None] + [0.0] * (3 - len(parts))
        deg, minutes, seconds = nums
        if deg < 0 or not 0 <= minutes < 60 or not 0 <= seconds < 60:
            return None
        result = deg + minutes / 60 + seconds / 3600
    else:
        single = _number(value)
        if single is None or single < 0:
            return None
        result = single
    if result > bound:
        return None
    return -result if hemisphere == negative else result


def _gps_time(date_value: Any, time_value: Any) -> datetime | None:
    date_text = _text(date_value)
    if not date_text or not isinstance(time_value, tuple | list) or len(time_value) != 3:
        return None
    parts = [_number(v) for v in time_value]
    if any(p is None for p in parts):
        return None
    h, m, s = (p for p in parts if p is not None)
    try:
        day = datetime.strptime(date_text[:10], "%Y:%m:%d").replace(tzinfo=UTC)
    except ValueError:
        return None
    if not (0 <= h < 24 and 0 <= m < 60 and 0 <= s < 61):
        return None
    return day + timedelta(hours=h, minutes=m, seconds=s)


def _taken_at(value: Any, offset: Any, default_tz: ZoneInfo) -> datetime | None:
    text = _text(value)
    if not text:
        return None
    try:
        local = datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    offset_text = _text(offset)
    if offset_text:
        try:
            return datetime.strptime(text[:19] + offset_text[:6], "%Y:%m:%d %H:%M:%S%z").astimezone(UTC)
        except ValueError:
            pass
    return local.replace(tzinfo=default_tz).astimezone(UTC)


def _ifd(exif: Image.Exif, tag: int, problems: list[str]) -> dict[int, Any]:
    try:
        return dict(exif.get_ifd(tag))
    except Exception:
        problems.append(f"ifd {tag:#x} unreadable")
        return {}


def read_metadata(im: Image.Image, default_tz: str = "Asia/Shanghai") -> PhotoMetadata:
    """GPS, capture time and orientation; anything malformed is treated as missing, never raised."""
    problems: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow warns on corrupt EXIF; we only want what is valid
        try:
            exif = im.getexif()
        except Exception:
            return PhotoMetadata(problems=["exif unreadable"])
        gps = _ifd(exif, GPS_IFD, problems)
        sub = _ifd(exif, EXIF_IFD, problems)
        try:
            raw_orientation = exif.get(ORIENTATION)
        except Exception:
            raw_orientation = None
    orientation = raw_orientation if isinstance(raw_orientation, int) and 1 <= raw_orientation <= 8 else None
    lat = _degrees(gps.get(2), gps.get(1), "N", "S", 90.0)
    lon = _degrees(gps.get(4), gps.get(3), "E", "W", 180.0)
    if lat is None or lon is None or (lat == 0.0 and lon == 0.0):
        if gps.get(2) is not None or gps.get(4) is not None:
            problems.append("gps position malformed")
        lat = lon = None
    alt = _number(gps.get(6))
    if alt is not None:
        below = gps.get(5)
        if below in (1, b"\x01") or (isinstance(below, bytes) and below[:1] == b"\x01"):
            alt = -alt
        if not -1000 <= alt <= 10000:
            alt = None
    return PhotoMetadata(
        lon=lon,
        lat=lat,
        alt_m=alt if lat is not None else None,
        gps_at=_gps_time(gps.get(29), gps.get(7)),
        taken_at=_taken_at(sub.get(DATETIME_ORIGINAL) or exif.get(0x0132), sub.get(OFFSET_TIME_ORIGINAL),
                           ZoneInfo(default_tz)),
        orientation=orientation,
        problems=problems,
    )


# --- derivatives ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Derived:
    display: bytes
    thumbnail: bytes
    width: int  # of the original, as stored
    height: int
    metadata: PhotoMetadata


def draft_request(width: int, height: int, target: int) -> tuple[int, int]:
    """The size to ask draft() for: the target box in the image's own aspect, so libjpeg picks the
    smallest DCT scale (1/2, 1/4, 1/8) whose result still covers the target on both sides."""
    scale = min(1.0, target / max(width, height))
    return max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))


def _orient(im: Image.Image, orientation: int | None) -> Image.Image:
    if orientation in (None, 1):
        return im
    try:
        return ImageOps.exif_transpose(im)
    except Exception:  # malformed EXIF: apply what we read ourselves
        method = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
                  4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
                  6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
                  8: Image.Transpose.ROTATE_90}.get(orientation or 1)
        return im.transpose(method) if method is not None else im


def _to_srgb_rgb(im: Image.Image) -> Image.Image:
    icc = im.info.get("icc_profile")
    if icc and im.mode in ("RGB", "RGBA"):
        try:
            from PIL import ImageCms

            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            converted = ImageCms.profileToProfile(im, source, ImageCms.createProfile("sRGB"))
            if converted is not None:
                im = converted
        except Exception:  # an unreadable profile: keep the pixels as they are
            log.info("ignoring an unreadable ICC profile")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if im.mode not in ("RGB", "L"):
        return im.convert("RGB")
    return im


def _encode(im: Image.Image, quality: int) -> bytes:
    im.info = {}  # nothing of the source travels: no EXIF, XMP, ICC, comments, GPS
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality, progressive=True)
    return buf.getvalue()


def make_derivatives(
    source: BinaryIO,
    *,
    default_tz: str = "Asia/Shanghai",
    max_pixels: int = 60_000_000,
    display_size: int = DISPLAY_SIZE,
    thumbnail_size: int = THUMBNAIL_SIZE,
) -> Derived:
    """Metadata plus a display image and a thumbnail, oriented, sRGB, stripped of all metadata."""
    Image.MAX_IMAGE_PIXELS = max_pixels
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(source) as im:
            width, height = im.size
            metadata = read_metadata(im, default_tz)
            if im.format == "JPEG":
                im.draft("RGB" if im.mode == "RGB" else None, draft_request(width, height, display_size))
            im.load()
            oriented = _orient(im, metadata.orientation)
            rgb = _to_srgb_rgb(oriented)
            display = rgb.copy() if rgb is im else rgb
            display.thumbnail((display_size, display_size), Image.Resampling.LANCZOS, reducing_gap=3.0)
            thumb = display.copy()
            thumb.thumbnail((thumbnail_size, thumbnail_size), Image.Resampling.LANCZOS, reducing_gap=3.0)
            return Derived(
                display=_encode(display, DISPLAY_QUALITY),
                thumbnail=_encode(thumb, THUMBNAIL_QUALITY),
                width=width,
                height=height,
                metadata=metadata,
            )
