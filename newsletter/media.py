"""Images for the issues: uploaded in the console (or put in the site's media/ by hand), served
by the public pages under /media/.

An upload is trusted for nothing: it is opened with Pillow and must be a JPEG, PNG or WebP
whatever its name says (SVG, which can carry script, never is); its byte size and its pixel
count are checked before it is decoded, against decompression bombs (a small file that unpacks
to gigapixels); it is decoded, turned upright by its EXIF orientation, scaled to at most
MAX_WIDTH pixels wide and saved anew, so no metadata (EXIF with a GPS position, XMP, comments)
survives; and it gets a random name, never the uploader's.
"""

from __future__ import annotations

import io
import re
import secrets
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import InputError
from .i18n import _
from .settings import Branding, Settings

MAX_WIDTH = 1200  # twice the email's column, for sharp images on high-density screens
HEAVY_BYTES = 300 * 1024  # `issue check` warns above this
FORMATS = {"JPEG": ("jpg", "image/jpeg"), "PNG": ("png", "image/png"),
           "WEBP": ("webp", "image/webp")}
CONTENT_TYPES = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png",
                 "webp": "image/webp", "gif": "image/gif"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,100}\.(jpg|jpeg|png|webp|gif)$")
URL_PREFIX = "/media/"


@dataclass(frozen=True)
class StoredImage:
    name: str
    url: str  # absolute, on the public pages
    width: int
    height: int
    size: int  # bytes


def media_url(settings: Settings, name: str) -> str:
    return f"{settings.organisation.base_url}{URL_PREFIX}{name}"


def media_file(settings: Settings, name: str) -> Path | None:
    """The file NAME in the site's media/ folder, or None for a name that is not a plain image
    file name (no folders, no dot files, a known image extension)."""
    if not _NAME.match(name or ""):
        return None
    path = settings.media_dir / name
    return path if path.is_file() else None


def local_name(settings: Settings, src: str) -> str | None:
    """The media/ file name an image URL points to, if it is one of the site's own."""
    prefix = settings.organisation.base_url + URL_PREFIX
    if not src.startswith(prefix):
        return None
    name = src[len(prefix):]
    return name if _NAME.match(name) else None


def image_size(settings: Settings, src: str) -> tuple[int, int] | None:
    """(width, height) of the site's own image at URL SRC, read from its header; None for an
    image elsewhere or a missing file."""
    name = local_name(settings, src)
    path = media_file(settings, name) if name else None
    if path is None:
        return None
    try:
        with Image.open(path) as img:
            return img.size
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError):
        return None


LOGO_BOX = (200, 80)  # the logo's largest size in an email's header and on the pages (px)


@dataclass(frozen=True)
class Logo:
    """The site's `[branding] logo` as shown: its public URL, alt text and display size."""

    url: str
    alt: str
    width: int
    height: int


def fit(size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """SIZE (width, height) scaled down, proportions kept, to fit inside BOX; never up."""
    width, height = size
    scale = min(1.0, box[0] / width, box[1] / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def logo(settings: Settings, branding: Branding) -> Logo | None:
    """BRANDING's logo to show (settings/tables.py checked that the file is in media/; the callers
    pass branding.current(settings)), sized for email: an HTML width and height within
    LOGO_BOX, so Outlook (which ignores CSS sizes) shows it small too; None without a logo, or
    when the file is not a readable image."""
    if not branding.logo:
        return None
    url = media_url(settings, branding.logo)
    size = image_size(settings, url)
    if not size or min(size) < 1:
        return None
    width, height = fit(size, LOGO_BOX)
    return Logo(url=url, alt=branding.logo_alt, width=width, height=height)


def store_upload(settings: Settings, data: bytes, *,
                 box: tuple[int, int] | None = None) -> StoredImage:
    """Check, clean and store an uploaded image under media/ (see the module's docstring);
    with BOX (width, height), scaled down to fit inside it (a logo) rather than to MAX_WIDTH."""
    console = settings.console
    if len(data) > console.max_upload_bytes:
        raise InputError(_("the image is larger than {mb} MB").format(
            mb=console.max_upload_bytes // (1024 * 1024)), field="image")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data), formats=list(FORMATS))
            width, height = img.size
            if width * height > console.max_image_pixels or width < 1 or height < 1:
                raise InputError(_("the image has too many pixels ({w} × {h})").format(
                    w=width, h=height), field="image")
            fmt = img.format
            img.load()
        except InputError:
            raise
        except (UnidentifiedImageError, Image.DecompressionBombWarning,
                Image.DecompressionBombError, OSError, ValueError, SyntaxError):
            raise InputError(_("not a JPEG, PNG or WebP image"), field="image") from None
    img = ImageOps.exif_transpose(img)
    size = fit(img.size, box or (MAX_WIDTH, img.height))
    if size != img.size:
        img = img.resize(size, Image.Resampling.LANCZOS)
    # Saved from pixels only: no EXIF, XMP, ICC or text chunks come along.
    img.info = {k: v for k, v in img.info.items() if k == "transparency"}
    extension, _type = FORMATS[fmt]
    out = io.BytesIO()
    if fmt == "JPEG":
        img.convert("RGB").save(out, "JPEG", quality=85, optimize=True, progressive=True)
    elif fmt == "PNG":
        if img.mode not in ("RGB", "RGBA", "L", "LA", "P"):
            img = img.convert("RGBA")
        img.save(out, "PNG", optimize=True)
    else:
        if img.mode not in ("RGB", "RGBA"):
            img = img.convert("RGBA")
        img.save(out, "WEBP", quality=85)
    name = f"{secrets.token_hex(10)}.{extension}"
    settings.media_dir.mkdir(parents=True, exist_ok=True)
    path = settings.media_dir / name
    with path.open("xb") as fh:  # a fresh random name: never over another file
        fh.write(out.getvalue())
    return StoredImage(name=name, url=media_url(settings, name), width=img.width,
                       height=img.height, size=len(out.getvalue()))
