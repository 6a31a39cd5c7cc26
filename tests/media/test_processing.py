"""Pillow processing on real files: EXIF read back, orientation applied, metadata stripped, and
large JPEGs decoded at a reduced DCT scale."""

from __future__ import annotations

import io

from PIL import Image, ImageCms

from backend.media.processing import draft_request, make_derivatives, read_metadata
from tests.media.conftest import TESTDATA, camera_jpeg


def test_gps_written_by_a_camera_is_read_back_exactly() -> None:
    data = camera_jpeg(lon=-108.3412345, lat=-30.0123456, alt_m=-12.5)
    meta = read_metadata(Image.open(io.BytesIO(data)))
    assert abs((meta.lon or 0) + 108.3412345) < 1e-6
    assert abs((meta.lat or 0) + 30.0123456) < 1e-6
    assert meta.alt_m == -12.5


def test_derivatives_are_upright_and_carry_no_exif_xmp_icc_or_gps() -> None:
    data = camera_jpeg(400, 200, lon=108.3, lat=30.0, orientation=6)
    derived = make_derivatives(io.BytesIO(data))
    assert derived.metadata.orientation == 6
    for blob in (derived.display, derived.thumbnail):
        im = Image.open(io.BytesIO(blob))
        assert im.format == "JPEG"
        assert len(im.getexif()) == 0
        assert not {"exif", "xmp", "icc_profile", "comment"} & set(im.info)
        assert b"Exif" not in blob and b"xmpmeta" not in blob and b"HuleiTestCam" not in blob
    display = Image.open(io.BytesIO(derived.display))
    assert display.size == (200, 400)  # rotated upright
    # The red mark of the top-left corner is now in the top-right corner.
    r, g, b = display.convert("RGB").getpixel((190, 10))  # type: ignore[misc]
    assert r > 200 and g < 80 and b < 80


def test_orientation_6_sample_photo_is_rotated() -> None:
    derived = make_derivatives(io.BytesIO((TESTDATA / "hopper_orientation_6.jpg").read_bytes()))
    assert derived.metadata.orientation == 6
    assert Image.open(io.BytesIO(derived.display)).size == (128, 128)


def test_png_with_alpha_and_icc_profile_becomes_a_flat_stripped_jpeg() -> None:
    im = Image.new("RGBA", (300, 200), (0, 128, 255, 0))
    im.paste((0, 128, 255, 255), (0, 0, 150, 200))
    buf = io.BytesIO()
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    im.save(buf, "PNG", icc_profile=srgb)
    derived = make_derivatives(io.BytesIO(buf.getvalue()))
    out = Image.open(io.BytesIO(derived.display))
    assert out.mode == "RGB" and "icc_profile" not in out.info
    assert out.getpixel((250, 100)) == (255, 255, 255)  # transparent became white


def test_large_jpeg_is_decoded_at_the_dct_scale_just_above_the_display_size() -> None:
    assert draft_request(4000, 3000, 1600) == (1600, 1200)
    data = camera_jpeg(4000, 3000, quality=85)
    im = Image.open(io.BytesIO(data))
    im.draft("RGB", draft_request(4000, 3000, 1600))
    assert im.size == (2000, 1500)  # 1/2 scale: the smallest that still covers 1600 px
    derived = make_derivatives(io.BytesIO(data))
    assert Image.open(io.BytesIO(derived.display)).size == (1600, 1200)
    assert Image.open(io.BytesIO(derived.thumbnail)).size == (320, 240)
    assert (derived.width, derived.height) == (4000, 3000)
