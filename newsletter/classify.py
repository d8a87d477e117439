"""A suggested priority area for an intake entry, with a score and the reason.

Two kinds of evidence, both cheap and both explainable to staff:

1. Keyword rules per area (`[intake.keywords]`, syntax in defaults.toml): a word of the title
   that matches an area's rule counts its weight (1 unless `^N` says otherwise), a word of the
   summary half that; each word counts once per area.
2. What staff filed before: the items in `issues/*/items/*.md` are examples of their area, and
   the entries staff rejected in the inbox are examples of "not for us". Titles are compared as
   TF-IDF vectors of character 4- and 5-grams inside words (Swedish glues words together:
   "hyresbostäder" shares grams with "bostadsbrist") with å/ä/ö folded; an area's similarity is
   the mean of its two nearest examples.

An area's score is its keyword score plus `LEARNED_WEIGHT` times the margin by which its
similarity exceeds every other area's (so that words common to all examples, like "kommun",
favour none, and a clear keyword is not overridden by a vague likeness). The best area
is suggested when its score reaches `THRESHOLD`, and when the entry is not closer to what staff
rejected than to that area's examples; otherwise the entry stays okategoriserad (area None):
the suggestion is never forced. The weights were set on the development half of
tests/data/intake_titles.csv and are measured by bench/intake_eval.py on the other half.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from .content import split_front_matter
from .errors import InputError
from .i18n import _, shown
from .models import EntryStatus, IntakeEntry
from .settings import Settings

THRESHOLD = 0.75  # the score an area needs: a title word of weight 0.75 or more, or two weak ones
LEARNED_WEIGHT = 2.0  # a margin of 0.375 in similarity over the next area counts as a keyword
SUMMARY_WEIGHT = 0.5  # a keyword in the summary counts half
NEIGHBOURS = 2  # an area's similarity: the mean of its nearest examples
SHOW_LIKE = 0.2  # an example less similar than this is not worth naming as the reason
MAX_EXAMPLE_BODY = 300  # characters of an item's text used besides its title
_WORD = re.compile(r"\w+(?:-\w+)*")
_RULE = re.compile(r"^(?P<mode>[*=]?)(?P<words>.+?)(?:\^(?P<weight>\d+(?:\.\d+)?))?$")
_FOLD = str.maketrans("åäöéü", "aaoeu")
_STOPWORDS = frozenset({  # folded, as features() sees them
    "alla", "andra", "andrade", "andring", "andringar", "andringarna", "att", "av", "betankande",
    "bland", "del", "den", "det", "direktiv", "efter", "eller", "en", "ett", "fa", "far", "for",
    "forordning", "forordningen", "forslag", "fran", "genom", "har", "hos", "inom", "inte", "kan",
    "kommittedirektiv", "lag", "lagar", "lagen", "med", "mer", "mot", "ny", "nya", "nytt", "och",
    "om", "over", "pa", "promemoria", "proposition", "remiss", "samt", "ska", "som", "sou",
    "till", "tillaggsdirektiv", "under", "utan", "utredning", "vid", "vissa",
})


@dataclass(frozen=True)
class Rule:
    """One keyword rule of one area, compiled."""

    area: str
    label: str  # as written in newsletter.toml
    pattern: re.Pattern[str]
    weight: float


@dataclass(frozen=True)
class Suggestion:
    """The area to suggest (None: okategoriserad), its score and why: the words that matched
    and the most similar example staff filed, if any."""

    area: str | None
    score: float
    words: tuple[str, ...] = ()
    like: str | None = None  # the title of the nearest example of that area
    similarity: float = 0.0
    rejected_like: str | None = None  # set when it looks like what staff rejected

    @property
    def reason(self) -> dict:
        """The reason as JSON-able data, stored with the entry."""
        out: dict = {"words": list(self.words)}
        if self.like:
            out["like"] = self.like
            out["similarity"] = round(self.similarity, 2)
        if self.rejected_like:
            out["rejected_like"] = self.rejected_like
        return out


def explain(reason: Mapping | None) -> str:
    """A stored reason as one line for staff."""
    reason = reason or {}
    parts = []
    if reason.get("words"):
        parts.append(_("words: {words}").format(words=", ".join(reason["words"])))
    if reason.get("like"):
        parts.append(_("like “{title}” ({similarity:.2f})").format(
            title=reason["like"], similarity=reason.get("similarity", 0)))
    if reason.get("rejected_like"):
        parts.append(_("like the rejected “{title}”").format(title=reason["rejected_like"]))
    return "; ".join(parts) or _("no word matched")


# --- keyword rules ----------------------------------------------------------------------------

def compile_rules(keywords: Mapping[str, Sequence[str]]) -> list[Rule]:
    """The rules of `[intake.keywords]`; a rule that is not a word is an InputError naming it."""
    rules = []
    for area, words in keywords.items():
        for raw in words:
            match = _RULE.match(raw.strip().lower())
            if not match or not _WORD.search(match["words"]):
                raise InputError(_("not a keyword: “{keyword}”").format(keyword=shown(raw)),
                                 field=f"intake.keywords.{area}")
            parts = [re.escape(w) for w in match["words"].split()]
            whole = match["mode"] == "="
            start = "" if match["mode"] == "*" else r"(?<!\w)"
            end = r"(?!\w)" if whole else r"\w*"
            body = r"\s+".join(p + (r"(?!\w)" if whole else r"\w*") for p in parts[:-1])
            body = (body + r"\s+" if body else "") + parts[-1] + end
            rules.append(Rule(area=area, label=raw, pattern=re.compile(start + body),
                              weight=float(match["weight"] or 1.0)))
    return rules


def keyword_scores(rules: Iterable[Rule], title: str, summary: str = "",
                   ) -> dict[str, tuple[float, list[str]]]:
    """Area -> (score, the words that matched, title first). Each word counts once per area,
    with the weight of the strongest rule that matched it."""
    found: dict[str, dict[tuple[int, int], tuple[float, str]]] = {}
    for text_no, (text, factor) in enumerate(((title, 1.0), (summary, SUMMARY_WEIGHT))):
        text = text.lower()
        starts = [m.start() for m in _WORD.finditer(text)]
        for rule in rules:
            for m in rule.pattern.finditer(text):
                word = bisect_right(starts, m.start()) - 1
                key = (text_no, word)
                weight = rule.weight * factor
                seen = found.setdefault(rule.area, {})
                if key not in seen or seen[key][0] < weight:
                    seen[key] = (weight, _whole_word(text, m.start(), m.end()))
    out = {}
    for area, words in found.items():
        # A word already counted from the title adds nothing more from the summary.
        in_title = {w for (t, _i), (_s, w) in words.items() if t == 0}
        kept = [(key, v) for key, v in sorted(words.items())
                if key[0] == 0 or v[1] not in in_title]
        out[area] = (sum(v[0] for _k, v in kept), list(dict.fromkeys(v[1] for _k, v in kept)))
    return out


def _whole_word(text: str, start: int, end: int) -> str:
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] == "-"):
        start -= 1
    while end < len(text) and (text[end].isalnum() or text[end] == "-"):
        end += 1
    return text[start:end]


# --- learning from what staff filed -------------------------------------------------------------

@dataclass(frozen=True)
class Example:
    title: str
    text: str  # title and some of the body
    area: str | None  # None: rejected in the inbox


def features(text: str) -> Counter[str]:
    """Character 4- and 5-grams of the words of TEXT (folded, stop words left out)."""
    grams: Counter[str] = Counter()
    for word in _WORD.findall(text.lower().translate(_FOLD)):
        for part in word.split("-"):
            if len(part) < 3 or part in _STOPWORDS or part.isdigit():
                continue
            padded = f"<{part}>"
            for n in (4, 5):
                grams.update(padded[i:i + n] for i in range(len(padded) - n + 1))
    return grams


@dataclass
class _Model:
    examples: list[Example]
    idf: dict[str, float] = field(default_factory=dict)
    # gram -> [(example index, weight)]: a query touches only the examples sharing its grams
    index: dict[str, list[tuple[int, float]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        counts = [features(e.text) for e in self.examples]
        df: Counter[str] = Counter()
        for c in counts:
            df.update(c.keys())
        n = len(counts)
        self.idf = {g: math.log((1 + n) / (1 + d)) + 1.0 for g, d in df.items()}
        for i, c in enumerate(counts):
            for gram, weight in self._vector(c).items():
                self.index.setdefault(gram, []).append((i, weight))

    def _vector(self, counts: Counter[str]) -> dict[str, float]:
        vec = {g: (1 + math.log(c)) * self.idf.get(g, 0.0) for g, c in counts.items()
               if g in self.idf}
        norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
        return {g: v / norm for g, v in vec.items()}

    def nearest(self, text: str) -> dict[str | None, tuple[float, str]]:
        """Area (None: rejected) -> (similarity, title of the nearest example)."""
        sims = [0.0] * len(self.examples)
        for gram, weight in self._vector(features(text)).items():
            for i, other in self.index.get(gram, ()):
                sims[i] += weight * other
        by_area: dict[str | None, list[tuple[float, str]]] = {}
        for example, sim in zip(self.examples, sims, strict=True):
            by_area.setdefault(example.area, []).append((sim, example.title))
        out = {}
        for area, found in by_area.items():
            found.sort(reverse=True)
            top = found[:NEIGHBOURS]
            out[area] = (sum(s for s, _t in top) / NEIGHBOURS, top[0][1])
        return out


class Classifier:
    """Suggests an area for an entry from the keyword rules and, if given, staff's examples."""

    def __init__(self, settings: Settings, examples: Sequence[Example] = ()) -> None:
        self.areas = settings.area_slugs
        self.rules = compile_rules(settings.intake.keywords)
        self.model = _Model(list(examples)) if examples else None

    @classmethod
    def for_site(cls, session: Session, settings: Settings) -> Classifier:
        """The rules, and as examples the site's filed items and the entries staff rejected."""
        return cls(settings, [*filed_examples(settings), *rejected_examples(session)])

    def suggest(self, title: str, summary: str = "") -> Suggestion:
        kw = keyword_scores(self.rules, title, summary)
        near = self.model.nearest(f"{title} {summary[:MAX_EXAMPLE_BODY]}") if self.model else {}
        sims = {a: near.get(a, (0.0, ""))[0] for a in self.areas}
        others = {a: max((v for b, v in sims.items() if b != a), default=0.0)
                  for a in self.areas}
        scores = {}
        for area in self.areas:
            scores[area] = kw.get(area, (0.0, []))[0] + LEARNED_WEIGHT * max(
                0.0, sims[area] - others[area])
        best = max(self.areas, key=lambda a: (scores[a], kw.get(a, (0.0,))[0],
                                              -self.areas.index(a)))
        score = scores[best]
        sim, like = near.get(best, (0.0, None))
        words = tuple(kw.get(best, (0.0, []))[1])
        rejected_sim, rejected_title = near.get(None, (0.0, None))
        like = like if sim >= SHOW_LIKE else None
        if rejected_sim > max(sim, SHOW_LIKE) and kw.get(best, (0.0,))[0] < THRESHOLD:
            return Suggestion(None, round(score, 2), words, like, sim,
                              rejected_like=rejected_title)
        if score < THRESHOLD:
            return Suggestion(None, round(score, 2), words, like, sim)
        return Suggestion(best, round(score, 2), words, like, sim)


def filed_examples(settings: Settings) -> list[Example]:
    """The items of the site's issues whose area is one of today's, as examples of it."""
    out = []
    for path in sorted(settings.issues_dir.glob("*/items/*.md")):
        try:
            data, body, _line = split_front_matter(path.read_text(encoding="utf-8-sig"),
                                                   str(path))
        except (InputError, OSError, UnicodeDecodeError):
            continue  # `issue check` reports broken files; here they only teach nothing
        title, area = data.get("title"), data.get("area")
        if isinstance(title, str) and area in settings.area_slugs:
            out.append(Example(title, f"{title} {body[:MAX_EXAMPLE_BODY]}", area))
    return out


def rejected_examples(session: Session) -> list[Example]:
    """The entries staff rejected in the inbox: examples of what is not for the newsletter."""
    rows = session.execute(select(IntakeEntry.title, IntakeEntry.summary).where(
        IntakeEntry.status == EntryStatus.REJECTED)).all()
    return [Example(t, f"{t} {s[:MAX_EXAMPLE_BODY]}", None) for t, s in rows]

