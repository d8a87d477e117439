"""The worker's heartbeat in site_meta: beats per worker, the newest wins, dead workers pruned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from newsletter import heartbeat
from newsletter.models import SiteMeta

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def test_no_worker_has_beaten(site):
    with site.transaction() as s:
        assert heartbeat.last_seen(s) is None
    assert heartbeat.is_stale(None, T0)


def test_the_newest_beat_of_several_workers_is_last_seen(site):
    with site.transaction() as s:
        heartbeat.beat(s, "post1:100", T0)
        heartbeat.beat(s, "post2:200", T0 + timedelta(seconds=30))
    with site.transaction() as s:
        heartbeat.beat(s, "post1:100", T0 + timedelta(seconds=10))
    with site.transaction() as s:
        assert heartbeat.last_seen(s) == T0 + timedelta(seconds=30)
        assert heartbeat.beats(s) == {"post1:100": T0 + timedelta(seconds=10),
                                      "post2:200": T0 + timedelta(seconds=30)}
        # The secret key's fingerprint lives in the same table and is left alone.
        assert s.get(SiteMeta, "secret_key_fingerprint") is not None
    seen = T0 + timedelta(seconds=30)
    assert not heartbeat.is_stale(seen, seen + heartbeat.STALE_AFTER)
    assert heartbeat.is_stale(seen, seen + heartbeat.STALE_AFTER + timedelta(seconds=1))


def test_a_beat_in_another_time_zone_is_stored_in_utc(site):
    stockholm = T0.astimezone(ZoneInfo("Europe/Stockholm"))
    with site.transaction() as s:
        heartbeat.beat(s, "post1:1", stockholm)
    with site.transaction() as s:
        assert s.get(SiteMeta, "heartbeat:post1:1").value == "2026-12-01T08:00:00Z"
        assert heartbeat.last_seen(s) == T0
    with site.transaction() as s, pytest.raises(ValueError):
        heartbeat.beat(s, "post1:1", datetime(2026, 12, 1, 8, 0))


def test_dead_workers_rows_are_pruned_by_the_next_beat(site):
    with site.transaction() as s:
        heartbeat.beat(s, "post1:100", T0)
        heartbeat.beat(s, "post1:101", T0 + timedelta(hours=20))
    with site.transaction() as s:
        heartbeat.beat(s, "post1:102", T0 + heartbeat.PRUNE_AFTER + timedelta(minutes=1))
    with site.transaction() as s:
        assert sorted(heartbeat.beats(s)) == ["post1:101", "post1:102"]


def test_a_long_host_name_fits_the_key_column_and_stays_distinct(site):
    host = "arbetare-" + "x" * 60 + ".kommunforbundet.example"
    with site.transaction() as s:
        heartbeat.beat(s, f"{host}:1", T0)
        heartbeat.beat(s, f"{host}:2", T0 + timedelta(seconds=5))
    with site.transaction() as s:
        keys = s.scalars(select(SiteMeta.key).where(SiteMeta.key.like("heartbeat:%"))).all()
        assert len(keys) == 2 and all(len(k) <= 40 for k in keys)
        assert heartbeat.last_seen(s) == T0 + timedelta(seconds=5)
