"""Benchmark: what reading the saved branding again costs (branding.current), per call and
beside what calls it: a public page and an email's render.

serve, the console and the worker read ROOT/branding.toml each time they show the branding,
so that a branding saved in the console is used without a restart. This copies the repository's
site (newsletter.toml, templates, issues) into a temp folder, then times `branding.current`
without a branding.toml (a failed stat) and with one (a logo in media/), a public page
(/arkiv/ through Flask's test client: page() asks for the branding once) and
render.render_message (the frame of every targeted or webinar message). Figures only.

    .venv/bin/python bench/branding_read.py [--n 2000]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from PIL import Image

from newsletter import branding, db
from newsletter.render import render_message
from newsletter.settings import BRANDING_FILE, load_settings
from newsletter.web import create_app
from newsletter.web.pages import background_of

ROOT = Path(__file__).resolve().parent.parent
ENV = {"NEWSLETTER_SECRET_KEY": "bench-secret-key-not-for-production"}


def _each(n: int, call) -> float:
    """Microseconds per call of CALL, over N calls."""
    start = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="calls per figure")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "site"
        root.mkdir()
        shutil.copy(ROOT / "newsletter.toml", root / "newsletter.toml")
        for folder in ("templates", "issues"):
            shutil.copytree(ROOT / folder, root / folder, ignore=shutil.ignore_patterns("build"))
        settings = load_settings(root, env=ENV)
        db.migrate(db.make_engine(settings.db_url))
        without = _each(args.n, lambda: branding.current(settings))
        (root / "media").mkdir()
        Image.new("RGB", (400, 100), (138, 21, 56)).save(root / "media" / "logo.png")
        (root / BRANDING_FILE).write_text('[branding]\nlogo = "logo.png"\nlogo_alt = "Logga"\n'
                                          'colour = "#8a1538"\n', encoding="utf-8")
        saved = _each(args.n, lambda: branding.current(settings))
        assert branding.current(settings).colour == "#8a1538"
        app = create_app(settings)
        client = app.test_client()
        page = _each(max(1, args.n // 10), lambda: client.get("/arkiv/"))
        background_of(app).stop()
        message = _each(max(1, args.n // 20), lambda: render_message(
            settings, subject="Påminnelse", body_markdown="Text med en [länk](https://example.se)."))
    print(f"branding.current, no branding.toml:   {without:8.1f} µs a call")
    print(f"branding.current, with branding.toml: {saved:8.1f} µs a call")
    print(f"a public page (/arkiv/):              {page:8.1f} µs "
          f"(the read is {saved / page:.1%} of it)")
    print(f"render_message (a message's frame):   {message:8.1f} µs "
          f"(the read is {saved / message:.1%} of it)")


if __name__ == "__main__":
    main()
