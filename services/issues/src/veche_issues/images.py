"""What an uploaded photo becomes: decoded by Pillow, turned upright, re-encoded
without any metadata as two JPEG copies (screen size and thumbnail).

Pure functions over bytes: no store, no HTTP. The original is read once and
dropped; nothing of its EXIF (GPS included) is kept or served. The GPS position it
carried is returned to the uploader only, as a suggestion for the report's location.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

try:  # HEIC (iPhones' default) needs libheif, which the pillow-heif wheel brings.
    from pillow_heif import register_heif_opener

    register_heif_opener()
    HEIC = True
except ImportError:  # pragma: no cover - the issues package depends on pillow-heif
    HEIC = False

# What Pillow may decode: only these decoders ever see an upload's bytes.
ACCEPTED = ("JPEG", "PNG", "WEBP", *(("HEIF",) if HEIC else ()))
ACCEPTED_NAMES = "JPEG, PNG, WebP" + (" or HEIC" if HEIC else "")
ACCEPTED_NAMES_RU = "JPEG, PNG, WebP" + (" или HEIC" if HEIC else "")
SCREEN_SIDE = 1600  # the longer side of the copy shown in an issue
THUMBNAIL_SIDE = 320  # the longer side of the copy shown in lists
JPEG_QUALITY = 82
CONTENT_TYPE = "image/jpeg"
GPS_IFD = 0x8825
_LAT, _LAT_REF, _LON, _LON_REF = 2, 1, 4, 3


class ImageRefused(Exception):
    """An upload that is not a photo we take: HTTP status, stable code, message."""

    def __init__(self, status: int, code: str, message: str, *, ru: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.ru = ru
        self.message = message


@dataclass(frozen=True)
class Copy:
    """One served copy of a photo: JPEG bytes and their size in pixels."""

    data: bytes
    width: int
    height: int


@dataclass(frozen=True)
class Photo:
    screen: Copy
    thumbnail: Copy
    source_format: str
    gps: tuple[float, float] | None  # (lat, lon) the original carried, for the uploader only


def unsupported(detail: str, ru: str) -> ImageRefused:
    return ImageRefused(
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        f"{detail} Send a {ACCEPTED_NAMES} photo.",
        ru=f"{ru} Пришлите фото в формате {ACCEPTED_NAMES_RU}.",
    )


def _open(data: bytes, max_pixels: int) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data), formats=ACCEPTED)
    except UnidentifiedImageError:
        raise unsupported(
            "This is not an image we accept.", "Такое изображение не принимается."
        ) from None
    except (OSError, ValueError, SyntaxError):
        raise unsupported(
            "The image could not be read (damaged or truncated?).",
            "Изображение не читается (повреждено или обрезано?).",
        ) from None
    # Checked from the header, before any pixel is decoded (a tiny file can claim huge sizes).
    if image.width * image.height > max_pixels:
        raise ImageRefused(
            413,
            "PAYLOAD_TOO_LARGE",
            f"The image is {image.width}×{image.height}; at most {max_pixels // 1_000_000} "
            "megapixels are accepted.",
            ru=f"Изображение {image.width}×{image.height}; принимается не больше "
            f"{max_pixels // 1_000_000} мегапикселей.",
        )
    return image


def _rational(value: Any) -> float:
    return float(value[0]) / float(value[1]) if isinstance(value, tuple) else float(value)


def gps_of(image: Image.Image) -> tuple[float, float] | None:
    """(lat, lon) from the EXIF GPS block, or None when absent or malformed."""
    try:
        gps = image.getexif().get_ifd(GPS_IFD)
        lat = sum(_rational(part) / 60**i for i, part in enumerate(gps[_LAT]))
        lon = sum(_rational(part) / 60**i for i, part in enumerate(gps[_LON]))
        lat = -lat if str(gps.get(_LAT_REF, "N")).upper().startswith("S") else lat
        lon = -lon if str(gps.get(_LON_REF, "E")).upper().startswith("W") else lon
    except (KeyError, TypeError, ValueError, ZeroDivisionError, IndexError, OSError):
        return None
    if not (math.isfinite(lat) and math.isfinite(lon) and abs(lat) <= 90 and abs(lon) <= 180):
        return None
    return round(lat, 6), round(lon, 6)


def _flat(image: Image.Image) -> Image.Image:
    """An RGB copy with no `info` (no EXIF, XMP, comments) and transparency on white."""
    if image.format == "JPEG":
        # Decodes a large JPEG at 1/2, 1/4 or 1/8 scale, still at least screen size:
        # a 48 MP photo then never needs its full bitmap.
        ratio = SCREEN_SIDE / max(image.size)
        image.draft("RGB", (int(image.width * ratio) + 1, int(image.height * ratio) + 1))
    upright = ImageOps.exif_transpose(image)  # the orientation tag goes; the pixels turn
    flat = Image.new("RGB", upright.size, (255, 255, 255))
    if upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info:
        rgba = upright.convert("RGBA")
        flat.paste(rgba, mask=rgba.getchannel("A"))
    else:
        flat.paste(upright.convert("RGB"))
    return flat


def _jpeg(image: Image.Image, side: int, icc: bytes | None) -> Copy:
    copy = image.copy()
    copy.thumbnail((side, side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    # Only the colour profile is carried over: it is how the pixels look, not who took them.
    extra = {"icc_profile": icc} if icc else {}
    copy.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True, progressive=True, **extra)
    return Copy(out.getvalue(), copy.width, copy.height)


def process(data: bytes, max_pixels: int) -> Photo:
    """The served copies of an upload, or ImageRefused (415 not a photo we take, 413 too
    many pixels). CPU-bound: run it in a thread."""
    if not data:
        raise unsupported("The body is empty.", "Тело запроса пустое.")
    with _open(data, max_pixels) as image:
        source_format = str(image.format)
        gps = gps_of(image)
        icc = image.info.get("icc_profile")
        try:
            image.seek(0)  # an animation's first frame
            flat = _flat(image)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            raise unsupported(
                "The image could not be decoded (damaged or truncated?).",
                "Изображение не декодируется (повреждено или обрезано?).",
            ) from None
    screen = _jpeg(flat, SCREEN_SIDE, icc if isinstance(icc, bytes) else None)
    thumbnail = _jpeg(flat, THUMBNAIL_SIDE, icc if isinstance(icc, bytes) else None)
    return Photo(screen, thumbnail, source_format, gps)
