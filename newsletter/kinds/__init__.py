"""The mail kinds: one module per kind, each a `sources.Source` (what the mailing says).

- `issue.py`: the monthly issue, a content variant per (areas, roles), and its web version;
- `targeted.py`: one Markdown message to a segment (`newsletter mail`);
- `webinar.py`: the webinar messages (announcement, confirmation, update, reminder, ...).

A new kind: a module here with a class that has the Source's members (kind, key, transactional,
subject, variant_of, render), a member in `models.MailingKind`, and a caller that hands it to
`outbox.creating.create_mailing`.
"""
