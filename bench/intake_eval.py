"""How well the intake suggests a priority area: accuracy on real government document titles.

    .venv/bin/python bench/intake_eval.py [--data tests/data/intake_titles.csv] [--errors]

The labelled set (tests/data/intake_titles.csv, described in tests/data/intake_titles.md) has
an area or "" (okategoriserad) per title, and a split: the weights in newsletter/classify.py
were chosen looking at "dev" only; "test" was not looked at while tuning.

Two ways, each on both splits:
- keywords: the default `[intake.keywords]` rules alone (a fresh site, nothing filed yet);
- keywords + learning: as a site where staff have handled other titles before. The labelled
  titles of the training part are written as items into the site's issues (through
  content.write_item, read back by classify.filed_examples, as the real site does) and the
  okategoriserad ones become rejected inbox entries. For "test" the training part is all of
  "dev"; for "dev" itself it is 5-fold cross-validation within dev.

Printed per way and split: accuracy over all titles; of the titles with an area, how many got
it, another area, or were left okategoriserad; of the okategoriserad titles, how many were
wrongly forced into an area; and the precision of the suggestions made. Figures, not a test.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from newsletter import content
from newsletter.classify import Classifier, Example, filed_examples
from newsletter.settings import Settings, load_settings

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Row:
    title: str
    area: str  # "" = okategoriserad
    split: str


@dataclass
class Tally:
    total: int = 0
    correct: int = 0
    area_total: int = 0
    area_right: int = 0
    area_wrong: int = 0
    area_missed: int = 0
    none_total: int = 0
    forced: int = 0
    suggested: int = 0
    seconds: float = 0.0

    def add(self, truth: str, guess: str | None) -> None:
        guess = guess or ""
        self.total += 1
        self.correct += truth == guess
        self.suggested += bool(guess)
        if truth:
            self.area_total += 1
            if guess == truth:
                self.area_right += 1
            elif guess:
                self.area_wrong += 1
            else:
                self.area_missed += 1
        else:
            self.none_total += 1
            self.forced += bool(guess)

    def line(self, label: str) -> str:
        def pct(a: int, b: int) -> str:
            return f"{100 * a / b:5.1f}%" if b else "   - "
        return (f"{label:<22} {pct(self.correct, self.total)} ({self.correct}/{self.total})  "
                f"area: {self.area_right} right, {self.area_wrong} wrong area, "
                f"{self.area_missed} left out of {self.area_total}  |  "
                f"okategoriserad: {self.forced} forced of {self.none_total}  |  "
                f"precision {pct(self.area_right, self.suggested)} of {self.suggested} "
                f"suggested  |  {1e6 * self.seconds / max(self.total, 1):.0f} µs/title")


def load_rows(path: Path) -> list[Row]:
    with path.open(encoding="utf-8", newline="") as fh:
        return [Row(r["title"], r["area"], r["split"]) for r in csv.DictReader(fh)]


def site(folder: Path) -> Settings:
    """A fresh site with the repository's default settings and no issues."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "newsletter.toml", folder / "newsletter.toml")
    return load_settings(folder, env={"NEWSLETTER_SECRET_KEY": "bench-secret-key-not-real"})


def trained(folder: Path, training: list[Row]) -> Classifier:
    """The classifier of a site where staff filed TRAINING's titles with an area (as items in
    past issues) and rejected the others in the inbox."""
    settings = site(folder)
    for i, row in enumerate(r for r in training if r.area):
        month = f"20{20 + i // 120:02d}-{1 + (i // 10) % 12:02d}"
        content.write_item(settings, month, title=row.title, area=row.area,
                           day=date(2025, 1, 1))
    rejected = [Example(r.title, r.title, None) for r in training if not r.area]
    return Classifier(settings, [*filed_examples(settings), *rejected])


def evaluate(classifier: Classifier, rows: list[Row], tally: Tally, errors: list[str]) -> None:
    started = time.perf_counter()
    for row in rows:
        guess = classifier.suggest(row.title)
        tally.add(row.area, guess.area)
        if (guess.area or "") != row.area:
            errors.append(f"  {row.area or '-':<15} got {guess.area or '-':<15} "
                          f"{guess.score:4.2f}  {row.title[:90]}")
    tally.seconds += time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO / "tests/data/intake_titles.csv")
    parser.add_argument("--errors", action="store_true", help="List the wrong suggestions.")
    args = parser.parse_args()
    rows = load_rows(args.data)
    dev = [r for r in rows if r.split == "dev"]
    test = [r for r in rows if r.split == "test"]
    counts = Counter(r.area or "okategoriserad" for r in rows)
    print(f"{len(rows)} titles ({len(dev)} dev, {len(test)} test): "
          + ", ".join(f"{a} {n}" for a, n in counts.most_common()))
    with tempfile.TemporaryDirectory() as tmp:
        keywords_only = Classifier(site(Path(tmp) / "fresh"))
        for name, part in (("dev", dev), ("test", test)):
            tally, errors = Tally(), []
            evaluate(keywords_only, part, tally, errors)
            print(tally.line(f"keywords, {name}"))
            if args.errors:
                print("\n".join(errors))
        tally, errors = Tally(), []
        folds = 5
        for k in range(folds):
            held = [r for i, r in enumerate(dev) if i % folds == k]
            rest = [r for i, r in enumerate(dev) if i % folds != k]
            evaluate(trained(Path(tmp) / f"fold{k}", rest), held, tally, errors)
        print(tally.line("+ learning, dev (cv)"))
        if args.errors:
            print("\n".join(errors))
        tally, errors = Tally(), []
        evaluate(trained(Path(tmp) / "dev-trained", dev), test, tally, errors)
        print(tally.line("+ learning, test"))
        if args.errors:
            print("\n".join(errors))


if __name__ == "__main__":
    main()
