"""Images: hostile uploads refused, good ones cleaned and resized, served by the public pages
under /media/, sized for the email's column, and checked by `issue check`."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from newsletter import content, issue_build, media
from newsletter.markdown import COLUMN_WIDTH, convert
from newsletter.web import create_app as public_app

from .helpers import png_bomb

MONTH = "2026-12"
ITEM = "07-kommuninvest-rantebesked"


def jpeg_with_gps(width: int = 2400, height: int = 1600) -> bytes:
    img = Image.new("RGB", (width, height), (30, 90, 160))
    exif = Image.Exif()
    exif[0x010F] = "Kamera AB"  # Make
    gps = {1: "N", 2: (63.0, 58.0, 30.0), 3: "E", 4: (17.0, 20.0, 0.0)}
    exif[0x8825] = gps
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif.tobytes(), quality=80)
    return out.getvalue()


def _upload(console, client, data: bytes, filename: str, alt: str = "Ett foto"):
    html = client.get(f"/nummer/{MONTH}/nyhet/{ITEM}").text
    hidden = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', html))
    form = {**hidden, "title": "Kommuninvest: nytt räntebesked", "area": "kapital",
            "kind": "nyhet", "url": "https://www.kommuninvest.se/", "date": "2026-12-01",
            "tags": "", "body": "Text.", "image": (io.BytesIO(data), filename),
            "image_alt": alt, "action": "save"}
    return client.post(f"/nummer/{MONTH}/nyhet/{ITEM}", data=form,
                       content_type="multipart/form-data")


def _media(console) -> list:
    folder = console.site.root / "media"
    return sorted(folder.iterdir()) if folder.exists() else []


def test_an_upload_is_resized_stripped_renamed_and_inserted_with_alt_text(console):
    client = console.signed_in("redaktor")
    response = _upload(console, client, jpeg_with_gps(), "semester GPS.jpg", alt="Kajen i Ånge")
    assert response.status_code == 303, response.text
    [stored] = _media(console)
    assert re.fullmatch(r"[0-9a-f]{20}\.jpg", stored.name)
    with Image.open(stored) as img:
        assert img.format == "JPEG" and img.size == (1200, 800)
        assert not img.getexif() and "exif" not in img.info
    assert b"Kamera AB" not in stored.read_bytes()
    text = (console.site.root / "issues" / MONTH / "items" / f"{ITEM}.md").read_text("utf-8")
    url = media.media_url(console.site.settings, stored.name)
    assert f"![Kajen i Ånge]({url})" in text
    item = [i for i in content.load_issue(console.site.settings, MONTH).items if i.id == ITEM][0]
    assert f'width="{COLUMN_WIDTH}" height="368"' in item.body.html


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_png_and_webp_keep_their_format_and_lose_their_metadata(console, fmt):
    img = Image.new("RGBA", (300, 200), (200, 30, 30, 128))
    exif = Image.Exif()
    exif[0x010F] = "Kamera AB"
    out = io.BytesIO()
    img.save(out, fmt, exif=exif.tobytes())
    response = _upload(console, console.signed_in("redaktor"), out.getvalue(), "x.bin")
    assert response.status_code == 303
    [stored] = _media(console)
    assert stored.suffix == {"PNG": ".png", "WEBP": ".webp"}[fmt]
    assert b"Kamera AB" not in stored.read_bytes()


@pytest.mark.parametrize(("data", "filename"), [
    (b"<?php system($_GET['c']); ?>", "bild.jpg"),
    (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "bild.svg"),
    (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "bild.png"),
    (b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "bild.gif"),
    (b"\xff\xd8\xff\xe0 truncated jpeg", "bild.jpg"),
])
def test_hostile_uploads_are_refused_and_nothing_is_written(console, data, filename):
    path = console.site.root / "issues" / MONTH / "items" / f"{ITEM}.md"
    before = path.read_bytes()
    response = _upload(console, console.signed_in("redaktor"), data, filename)
    assert response.status_code == 400
    assert 'id="image-fel"' in response.text
    assert _media(console) == [] and path.read_bytes() == before


def test_a_decompression_bomb_is_refused_before_it_is_decoded(console):
    response = _upload(console, console.signed_in("redaktor"), png_bomb(), "bomb.png")
    assert response.status_code == 400
    assert _media(console) == []


def test_a_50_mb_upload_is_refused(console):
    big = b"\xff\xd8\xff" + b"\x00" * (50 * 1024 * 1024)
    response = _upload(console, console.signed_in("redaktor"), big, "stor.jpg")
    assert response.status_code == 413
    assert _media(console) == []


def test_a_path_in_the_file_name_goes_nowhere(console):
    response = _upload(console, console.signed_in("redaktor"), jpeg_with_gps(40, 30),
                       "../../../newsletter.toml.jpg")
    assert response.status_code == 303
    [stored] = _media(console)
    assert stored.parent == console.site.root / "media"
    assert "newsletter" not in stored.name


def test_an_image_needs_alt_text(console):
    response = _upload(console, console.signed_in("redaktor"), jpeg_with_gps(40, 30), "a.jpg",
                       alt="  ")
    assert response.status_code == 400 and 'id="image_alt-fel"' in response.text
    assert _media(console) == []


def test_the_public_pages_serve_media_safely(console):
    stored = media.store_upload(console.site.settings, jpeg_with_gps(100, 50))
    (console.site.root / "media" / "notes.txt").write_text("<script>alert(1)</script>")
    (console.site.root / "media" / "sub").mkdir()
    web = public_app(console.site.settings).test_client()
    response = web.get(f"/media/{stored.name}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/jpeg"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    for path in ("/media/", "/media/sub", "/media/notes.txt", "/media/..%2fnewsletter.toml",
                 "/media/../newsletter.toml", "/media/%2e%2e/newsletter.toml",
                 "/media/.secret_key", "/media/sub/x.jpg"):
        assert web.get(path).status_code == 404, path


def test_issue_check_reports_missing_heavy_and_alt_less_images(console):
    settings = console.site.settings
    heavy = Image.effect_noise((1200, 1200), 90).convert("RGB")
    out = io.BytesIO()
    heavy.save(out, "PNG")
    big = media.store_upload(settings, out.getvalue())
    assert big.size > media.HEAVY_BYTES
    path = console.site.root / "issues" / MONTH / "items" / f"{ITEM}.md"
    missing = media.media_url(settings, "0000000000000000dead.jpg")
    path.write_text(path.read_text("utf-8") + f"\n![]({big.url})\n\n![Borta]({missing})\n",
                    encoding="utf-8")
    report = issue_build.check_issue(settings, MONTH)
    errors = [str(f) for f in report.errors]
    warnings = [str(f) for f in report.warnings]
    assert any("0000000000000000dead.jpg" in e and ITEM in e for e in errors)
    assert any(big.name in w and "kB" in w for w in warnings)  # sv catalog: "kB"
    assert any("utan alt-text" in w and ITEM in w for w in warnings)
    assert console.site.cli("issue", "check", MONTH, ok=False).exit_code != 0


def test_an_image_of_unknown_size_gets_the_column_width():
    html = convert("![Karta](https://example.se/karta.png)").html
    assert f'width="{COLUMN_WIDTH}"' in html and "height" not in html
    small = convert("![Logga](https://example.se/l.png)", image_size=lambda src: (120, 40)).html
    assert 'width="120" height="40"' in small
