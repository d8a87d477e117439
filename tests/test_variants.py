"""Variants cut from the whole issue (render.py, assembly.py) equal, byte for byte, the same
variants rendered on their own through Jinja, MJML and premailer: HTML, text and manifest, the
table of contents and its counts included, and the web version too."""

from __future__ import annotations

import itertools
import re

import mjml

from newsletter import render
from newsletter.assembly import Assembly, Marks, structural_css
from newsletter.content import load_issue
from newsletter.render import WEB_KEY, IssueRenderer


def _same(cut, alone) -> None:
    assert cut.html == alone.html
    assert cut.text == alone.text
    assert cut.manifest == alone.manifest


def _toc(html: str) -> list[tuple[str, int]]:
    """The table of contents of HTML: (area name, count) in order."""
    ul = html[html.index("<strong>I det här numret</strong>"):]
    ul = ul[:ul.index("</ul>")]
    return [(name, int(n)) for name, n in re.findall(r">([^<>]+)</a> \((\d+)\)</li>", ul)]


def _counting(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = mjml.mjml2html

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(render.mjml, "mjml2html", counting)
    return calls


def _sample(renderer: IssueRenderer, slugs: list[str], role_sets) -> list[str]:
    """Keys of area choices (none, each alone, some pairs and triples, all) x ROLE_SETS."""
    pairs = itertools.islice(itertools.combinations(slugs, 2), 0, None, 3)
    triples = itertools.islice(itertools.combinations(slugs, 3), 0, None, 7)
    choices = [None, frozenset(), *(frozenset({s}) for s in slugs),
               *(frozenset(c) for c in pairs), *(frozenset(c) for c in triples)]
    keys = []
    for areas, roles in itertools.product(choices, role_sets):
        key = renderer.variant_key(areas, frozenset(roles))
        if key not in keys:
            keys.append(key)
    return keys


def test_cut_variants_and_the_web_version_equal_variants_rendered_alone(site, monkeypatch):
    settings = site.settings
    slugs = [a.slug for a in settings.areas]
    calls = _counting(monkeypatch)
    renderer = IssueRenderer(settings, load_issue(settings, "2026-12"))
    keys = _sample(renderer, slugs, [(), ("kommunchef",), ("politiker", "kso")])
    assert len(keys) >= 25
    cut = [renderer.render(key) for key in keys]
    web = renderer.web_version()
    assert len(calls) == 2  # the whole issue once for the emails, once for the web version
    for key, variant in zip(keys, cut, strict=True):
        _same(variant, renderer.render_alone(key))
    _same(web, renderer.render_alone(WEB_KEY))

    # The table of contents lists the variant's areas with its own counts.
    chief = renderer.render(renderer.variant_key(frozenset({"medlemmar", "arbetsmarknad"}),
                                                 frozenset({"kommunchef"})))
    other = renderer.render(renderer.variant_key(frozenset({"medlemmar", "arbetsmarknad"}),
                                                 frozenset()))
    assert _toc(chief.html) == [("Våra medlemmar", 3), ("Arbetsmarknaden", 3)]
    assert _toc(other.html) == [("Våra medlemmar", 2), ("Arbetsmarknaden", 2)]
    empty = renderer.render(renderer.variant_key(frozenset(), frozenset()))
    assert "<strong>I det här numret</strong>" not in empty.html
    assert "inga nyheter" in empty.html
    assert not any("__NLCUT" in c.html + c.text for c in [*cut, web])
    assert "inga nyheter" not in chief.html + chief.text


def _item(site, name: str, area: str, title: str, roles: str = "", body: str = "Text.") -> None:
    (site.root / "issues/2026-12/items" / f"{name}.md").write_text(
        f"---\ntitle: {title}\narea: {area}\nkind: nyhet\n"
        + (f"roles: [{roles}]\n" if roles else "") + f"order: {name[:2]}\n---\n{body}\n",
        encoding="utf-8")


def test_items_that_become_first_and_areas_only_a_role_sees(site):
    """An area whose first items are role-restricted: a later item becomes the first one (no
    separator line above it) for those without the role; an area only kommunchefer see; and
    item text that looks like an assembly token."""
    items = site.root / "issues/2026-12/items"
    for path in items.glob("*.md"):
        if "kapital" in path.read_text(encoding="utf-8") or "infrastruktur" in path.read_text(
                encoding="utf-8"):
            path.unlink()
    _item(site, "01-kso", "kapital", "Bara för KSO", roles="kso")
    _item(site, "02-chef", "kapital", "Bara för kommunchefer", roles="kommunchef")
    _item(site, "03-alla", "kapital", "För alla",
          body="Ser ut som `__NLCUT0123456789abB0__` men är text.")
    _item(site, "04-alla", "kapital", "Också för alla")
    _item(site, "05-chef", "infrastruktur", "Vägar för kommunchefer", roles="kommunchef")
    settings = site.settings
    renderer = IssueRenderer(settings, load_issue(settings, "2026-12"))
    roles = [r for k in range(3) for r in itertools.combinations(["kso", "kommunchef"], k)]
    keys = _sample(renderer, ["kapital", "infrastruktur", "bostad"], roles)
    for key in keys:
        _same(renderer.render(key), renderer.render_alone(key))
    _same(renderer.web_version(), renderer.render_alone(WEB_KEY))

    nobody = renderer.render(renderer.variant_key(frozenset({"kapital", "infrastruktur"}),
                                                  frozenset()))
    assert _toc(nobody.html) == [("Kapitalförsörjning", 2)]
    assert "Bara för" not in nobody.html and ">Infrastruktur</h2>" not in nobody.html
    first = nobody.html[nobody.html.index("För alla</h3>") - 600:]
    assert "border-top:1px solid #e1e6ec" not in first[:first.index("För alla</h3>")]
    chief = renderer.render(renderer.variant_key(frozenset({"kapital", "infrastruktur"}),
                                                 frozenset({"kommunchef"})))
    assert _toc(chief.html) == [("Kapitalförsörjning", 3), ("Infrastruktur", 1)]
    assert "__NLCUT0123456789abB0__" in chief.html and "__NLCUT0123456789abB0__" in chief.text


def test_templates_without_marks_render_each_variant_alone(site, monkeypatch):
    """A site's own issue template from before the marks (loop.first, no marks) still works:
    each variant is then a render of its own."""
    path = site.root / "templates/email/issue.mjml.j2"
    old = re.sub(r"<mj-raw>\{\{ [\w.]+ \}\}</mj-raw>\n", "", path.read_text(encoding="utf-8"))
    path.write_text(old.replace("item.first", "loop.first"), encoding="utf-8")
    calls = _counting(monkeypatch)
    settings = site.settings
    renderer = IssueRenderer(settings, load_issue(settings, "2026-12"))
    keys = _sample(renderer, ["bostad", "kapital"], [(), ("kommunchef",)])
    cut = [renderer.render(key) for key in keys]
    assert len(calls) == len(keys) + 1  # the whole issue once (unusable), then each alone
    for key, variant in zip(keys, cut, strict=True):
        _same(variant, renderer.render_alone(key))
    assert "Nytt förslag om strandskyddet" in renderer.render(
        renderer.variant_key(frozenset({"bostad"}), frozenset())).html


def test_css_that_depends_on_neighbours_renders_each_variant_alone(site, monkeypatch):
    path = site.root / "templates/email/base.mjml.j2"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "      .small a {", "      .body div:first-child h3 { color: #000; }\n      .small a {"),
        encoding="utf-8")
    calls = _counting(monkeypatch)
    settings = site.settings
    renderer = IssueRenderer(settings, load_issue(settings, "2026-12"))
    keys = _sample(renderer, ["bostad"], [()])
    for key in keys:
        _same(renderer.render(key), renderer.render_alone(key))
    assert len(calls) == 1 + 2 * len(keys)


def test_an_assembly_keeps_nested_pieces_and_fills_in_counts():
    marks = Marks()
    a, b, inner = marks.piece("a"), marks.piece("b"), marks.piece("inner")
    doc = (f"<p>{a.begin}A({marks.count('n', 1)}){inner.begin}+{inner.end}{a.end}"
           f"{b.begin}B{b.end}</p>")
    assembly = Assembly.parse(doc, marks)
    assert assembly is not None
    assert assembly.build(lambda n: True, {"n": 7}) == "<p>A(7)+B</p>"
    assert assembly.build(lambda n: n != "inner", {"n": 2}) == "<p>A(2)B</p>"
    assert assembly.build(lambda n: n == "inner", {"n": 2}) == "<p></p>"  # inside a dropped one
    # Missing, doubled or crossed tokens: no assembly (the caller renders alone).
    assert Assembly.parse(doc.replace(b.end, ""), marks) is None
    assert Assembly.parse(doc + a.begin + a.end, marks) is None
    assert Assembly.parse(f"{a.begin}{b.begin}{a.end}{b.end}{inner.begin}{inner.end}",
                          marks) is None
    assert Assembly.parse(doc.replace(b.begin + "B" + b.end, ""), marks) is None
    assert Assembly.parse(doc.replace(b.begin + "B" + b.end, ""), marks,
                          skip=lambda name: name == "b") is not None
    assert Assembly.parse("<p>no marks</p>", Marks(False)) is None


def test_structural_css_is_found_in_style_blocks_only():
    assert not structural_css("<style>.a b { x: 1 } @media (max-width:480px) { .c { y: 2 } }"
                              "</style><p>a + b ~ c :first-child</p>")
    for rule in (".a:first-child { x: 1 }", "li:nth-child(2n+1) { x: 1 }", "h2 + p { x: 1 }",
                 "@media screen { .a ~ .b { x: 1 } }", "td:last-of-type{x:1}"):
        assert structural_css(f"<style>{rule}</style>"), rule
