"""The ledger: mailings, their frozen content and their recipients, and every statement on the
three tables that hold them (`mailings`, `mailing_variants`, `outbox`). No module outside this
package writes to them.

One module per concept; callers import the one they need (`from newsletter.outbox import
creating`), and this file imports none of them:

- `creating`: a mailing, its frozen content and its recipients (idempotent per kind, source key
  and segment), test copies, messages to one address, the dry run, the lookups of a mailing;
  `bulk`: the driver-level statements of its bulk path.
- `sending`: the sending state: claims, records and releases (sender.py), a mailing paused or
  finished while it sends, which mailings have work due.
- `lifecycle`: where a mailing stands (counts, failures), pause and resume, the life of a
  scheduled mailing.
- `forgetting`: erasure, retention, and what the ledger tells about a person.
"""
