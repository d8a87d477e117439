"""Generated contacts for the benches: N persons straight into a site's database, fast.

    generate(db_url, n, members=70)   # after `newsletter init`; returns the member names

`send_bench.py` imports its contacts through `newsletter contacts import` (the real path, a few
thousand rows a second); a million that way would take most of an hour, so the benches that need
hundreds of thousands of contacts write them with multi-row INSERTs instead: each person with one
position (a role in one of MEMBERS member municipalities, held since 2024) and, for one in five,
one to three chosen priority areas, the same mix as send_bench's CSV. Demo data: every address
is kontaktNNNNNNN@example.se.
"""

from __future__ import annotations

import random
import secrets
from datetime import UTC, date, datetime

from sqlalchemy import insert, select, update

from newsletter import db
from newsletter.models import Municipality, Person, PersonArea, Position

FIRST = ["Anna", "Bengt", "Cecilia", "David", "Eva", "Filip", "Greta", "Hans", "Ingrid", "Jonas",
         "Karin", "Lars", "Maria", "Nils", "Olof", "Petra", "Åsa", "Örjan", "Ängla", "Ulf"]
LAST = ["Andersson", "Berg", "Carlsson", "Dahl", "Ek", "Fors", "Gustafsson", "Holm", "Isaksson",
        "Johansson", "Lund", "Nilsson", "Öberg", "Åberg", "Sjöberg", "Wall"]
ROLES = ["kommunchef", "kso", "politiker", "tjansteperson", "tjansteperson", "tjansteperson"]
AREAS = ["medlemmar", "bostad", "kapital", "omvarld", "digitalisering", "infrastruktur",
         "arbetsmarknad"]
BATCH = 5_000
SINCE = date(2024, 1, 1)


def generate(db_url: str, n: int, *, members: int = 70, seed: int = 4) -> list[str]:
    """Write N persons (and their positions and areas) into the database at DB_URL, making
    MEMBERS municipalities members; returns their names."""
    rng = random.Random(seed)
    engine = db.make_engine(db_url)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        towns = conn.execute(select(Municipality.id, Municipality.name)
                             .order_by(Municipality.id)).all()
        chosen = rng.sample(towns, members)
        conn.execute(update(Municipality).where(Municipality.id.in_([t.id for t in chosen]))
                     .values(member=True, member_since=SINCE))
        first_id = (conn.scalar(select(Person.id).order_by(Person.id.desc()).limit(1)) or 0) + 1
    for start in range(0, n, BATCH):
        persons, positions, areas = [], [], []
        for i in range(start, min(n, start + BATCH)):
            pid = first_id + i
            persons.append({
                "id": pid, "public_id": secrets.token_urlsafe(16),
                "email": f"kontakt{i:07d}@example.se",
                "name": f"{rng.choice(FIRST)} {rng.choice(LAST)}", "status": "active",
                "language": "sv", "lawful_basis": "legitimate_interest",
                "basis_source": "bench (demo data)", "basis_at": now, "soft_bounces": 0,
                "created_at": now, "updated_at": now})
            positions.append({"person_id": pid, "municipality_id": chosen[i % members].id,
                              "role": rng.choice(ROLES), "started_on": SINCE})
            if rng.random() < 0.2:
                areas.extend({"person_id": pid, "area": a}
                             for a in rng.sample(AREAS, rng.randint(1, 3)))
        with engine.begin() as conn:
            conn.execute(insert(Person), persons)
            conn.execute(insert(Position), positions)
            if areas:
                conn.execute(insert(PersonArea), areas)
    with engine.begin() as conn:
        db.refresh_statistics(conn)  # as `contacts import` does after writing
    engine.dispose()
    return [t.name for t in chosen]
