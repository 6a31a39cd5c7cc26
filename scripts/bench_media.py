"""Benchmark photo derivatives (issue 4): not a test, a measurement.

    uv run python scripts/bench_media.py [--images 6] [--rounds 2]

1. Derivatives (1600 px display + 320 px thumbnail, JPEG-encoded) of 12-megapixel camera JPEGs
   (4000x3000, gradients + sensor-like noise + edges, quality 90, generated here), in one process
   (one core): images per second for the service path (backend.media.processing.make_derivatives:
   draft mode at the DCT scale just above 1600 px) and for the naive path (open, full decode,
   thumbnail, same encodes). Target: service >= 1.4x naive.
2. Peak memory of processing one 50-megapixel JPEG, measured in a fresh child process (peak
   resident set, VmHWM, which includes the interpreter and the file's bytes). Target: < 300 MB.
--json PATH also writes the figures for scripts/bench.py (the naive path is each one's baseline).
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchkit import Figure, add_json_option, write_json
from PIL import Image, ImageDraw, ImageFilter

from backend.media.processing import DISPLAY_QUALITY, THUMBNAIL_QUALITY, make_derivatives


def camera_like_jpeg(width: int, height: int, seed: int, quality: int = 90) -> bytes:
    """A synthetic photo with the statistics that matter to a JPEG decoder: smooth gradients, fine
    noise (sensor grain, foliage) and hard edges, so it compresses like a real 12 MP photo."""
    small = (width // 8, height // 8)
    base = Image.merge("RGB", [
        Image.linear_gradient("L").resize(small).rotate(seed * 37 % 360, expand=False),
        Image.radial_gradient("L").resize(small),
        Image.linear_gradient("L").transpose(Image.Transpose.ROTATE_90).resize(small),
    ]).resize((width, height), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(base)
    for i in range(40):
        x = (i * 977 + seed * 131) % width
        y = (i * 613 + seed * 71) % height
        draw.rectangle((x, y, x + width // 10, y + height // 12), fill=((i * 50) % 256, (i * 80) % 256, (i * 20) % 256))
    grain = Image.effect_noise((width, height), 28).convert("RGB")
    texture = Image.effect_noise((width // 2, height // 2), 64).filter(ImageFilter.GaussianBlur(1)).resize(
        (width, height)).convert("RGB")
    photo = Image.blend(Image.blend(base, texture, 0.25), grain, 0.12)
    buf = io.BytesIO()
    photo.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def naive(data: bytes) -> tuple[bytes, bytes]:
    """Open, full decode, thumbnail, encode."""
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        display = im.copy()
    display.thumbnail((1600, 1600), Image.Resampling.LANCZOS)
    thumb = display.copy()
    thumb.thumbnail((320, 320), Image.Resampling.LANCZOS)
    out1, out2 = io.BytesIO(), io.BytesIO()
    display.save(out1, "JPEG", quality=DISPLAY_QUALITY, progressive=True)
    thumb.save(out2, "JPEG", quality=THUMBNAIL_QUALITY, progressive=True)
    return out1.getvalue(), out2.getvalue()


def service(data: bytes) -> tuple[bytes, bytes]:
    derived = make_derivatives(io.BytesIO(data))
    return derived.display, derived.thumbnail


def rate(fn: object, images: list[bytes], rounds: int) -> float:
    assert callable(fn)
    fn(images[0])  # warm up
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for data in images:
            fn(data)
        best = min(best, time.perf_counter() - start)
    return len(images) / best


def _peak_rss_mb() -> float:
    """This process's peak resident set. VmHWM belongs to the process image, whereas ru_maxrss
    survives exec() and so would report the (large) parent's peak in a freshly spawned child."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _peak_child(path: str, which: str, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    data = Path(path).read_bytes()
    before = _peak_rss_mb()
    (service if which == "service" else naive)(data)
    queue.put((before, _peak_rss_mb()))


def peak_memory_mb(path: Path, which: str) -> tuple[float, float]:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_peak_child, args=(str(path), which, queue))
    proc.start()
    result = queue.get(timeout=600)
    proc.join()
    return result  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2)
    add_json_option(parser)
    args = parser.parse_args()

    print(f"generating {args.images} camera-like 4000x3000 JPEGs (quality 90)...", flush=True)
    images = [camera_like_jpeg(4000, 3000, seed) for seed in range(args.images)]
    mean_mb = sum(map(len, images)) / len(images) / 1e6
    print(f"  mean file size {mean_mb:.1f} MB")
    naive_rate = rate(naive, images, args.rounds)
    service_rate = rate(service, images, args.rounds)
    print("derivatives (1600 px display + 320 px thumbnail), one process = one core:")
    print(f"  naive path   (open, full decode, thumbnail): {naive_rate:6.2f} images/s per core")
    print(f"  service path (draft mode DCT scaling):       {service_rate:6.2f} images/s per core")
    ratio = service_rate / naive_rate
    print(f"  speed-up {ratio:.2f}x (target >= 1.4x): {'OK' if ratio >= 1.4 else 'MISSED'}")

    print("generating one 50-megapixel JPEG (8660x5774)...", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "50mp.jpg"
        path.write_bytes(camera_like_jpeg(8660, 5774, 99))
        print(f"  file size {path.stat().st_size / 1e6:.1f} MB")
        peaks = {}
        for which in ("service", "naive"):
            before, after = peak_memory_mb(path, which)
            peaks[which] = after
            verdict = "" if which == "naive" else f" (target < 300 MB: {'OK' if after < 300 else 'MISSED'})"
            print(f"  peak RSS processing it, {which:7s} path: {after:6.1f} MB "
                  f"(process before processing: {before:.1f} MB){verdict}")
    write_json(args.json, [
        Figure("photo derivatives of 12 MP JPEGs, service vs naive path, one core", ratio, "x", 1.4, "ge",
               naive_rate, "images/s", f"service {service_rate:.2f} images/s; baseline: naive path"),
        Figure("peak memory processing one 50 MP JPEG", peaks["service"], "MB", 300, "le",
               peaks["naive"], "MB", "baseline: naive path (full decode)"),
    ])


if __name__ == "__main__":
    main()
