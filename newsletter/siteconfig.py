"""The site's own newsletter.toml: what `newsletter init` writes for a real organisation and
`newsletter demo` writes for the demo, and how to tell the demo's values from real ones.

Both write the embedded defaults (defaults.toml, with its comments) with the `[organisation]`
table filled in; the embedded defaults carry the demo's organisation, so that a folder without
a newsletter.toml still loads, but `init` never writes them: a real site gets the values its
operator gave, validated here. `demo_fields` names the settings that still hold demo values,
for `newsletter doctor` and for anything that must refuse to send real mail with them.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .contacts import normalise_email
from .errors import InputError
from .files import atomic_write
from .i18n import _
from .netloc import is_loopback
from .settings import CONFIG_NAME, Organisation, default_config_text

# What `newsletter init` asks for, in order: organisation key -> the flag that gives it.
ASKED = {
    "name": "--org",
    "sender": "--sender",
    "reply_to": "--reply-to",
    "postal_address": "--postal-address",
    "base_url": "--base-url",
}
DEMO_DOMAIN = "example.se"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LONGEST = 200  # a name or postal address longer than this is a mistake (a pasted paragraph)


@dataclass(frozen=True)
class Problem:
    """One value that does not validate: the organisation key, its flag and why."""

    key: str
    reason: str

    def __str__(self) -> str:
        return f"{ASKED.get(self.key, self.key)}: {self.reason}"


def demo_organisation() -> dict[str, str]:
    """The demo's [organisation] (the embedded defaults' values)."""
    return dict(tomllib.loads(default_config_text())["organisation"])


def _text(key: str, raw: str) -> str:
    value = " ".join((raw or "").split())
    if not value:
        raise InputError(_("must not be empty"), field=ASKED[key])
    if len(value) > _LONGEST:
        raise InputError(_("longer than {n} characters").format(n=_LONGEST), field=ASKED[key])
    return value


def _address(key: str, raw: str) -> str:
    return normalise_email(raw, field=ASKED[key])


def _base_url(raw: str) -> str:
    field = ASKED["base_url"]
    text = (raw or "").strip()
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
        parts.port  # noqa: B018  (raises ValueError for a bad port)
    except ValueError as exc:
        raise InputError(_("not a URL: {reason}").format(reason=exc), field=field) from None
    if parts.scheme not in ("https", "http") or not host:
        raise InputError(_("give the public address with https://, e.g. "
                           "https://nyhetsbrev.example.org"), field=field)
    if parts.scheme == "http" and not is_loopback(host):
        raise InputError(_("must be https:// (the unsubscribe links in every message point "
                           "here); http:// only for 127.0.0.1 or localhost"), field=field)
    if parts.username or parts.password or parts.query or parts.fragment:
        raise InputError(_("only scheme, host, port and path, no user, ?query or #fragment"),
                         field=field)
    if _CONTROL.search(text) or " " in text:
        raise InputError(_("has spaces or control characters"), field=field)
    netloc = parts.netloc.rpartition("@")[2].lower()
    return f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"


_VALIDATORS = {
    "name": lambda raw: _text("name", raw),
    "sender": lambda raw: _address("sender", raw),
    "reply_to": lambda raw: _address("reply_to", raw),
    "postal_address": lambda raw: _text("postal_address", raw),
    "base_url": _base_url,
}


def validate(key: str, raw: str) -> str:
    """The value of organisation KEY (one of ASKED) in canonical form, or InputError naming
    its flag and what is wrong."""
    return _VALIDATORS[key](raw)


def organisation(values: Mapping[str, str]) -> dict[str, str]:
    """The whole [organisation] table for the ASKED VALUES (all of them, validated).

    The rest follows from them: the sender's display name is the organisation's name, List-Id
    the base URL's host name, and List-Unsubscribe's mailto: the reply-to address (a person
    reads what arrives there and runs `newsletter contacts unsubscribe`). newsletter.toml can
    change each afterwards.
    """
    missing = [ASKED[k] for k in ASKED if not values.get(k)]
    if missing:
        raise InputError(_("missing {flags}").format(flags=", ".join(missing)))
    org = {key: validate(key, values[key]) for key in ASKED}
    host = urlsplit(org["base_url"]).hostname or ""
    return {
        "name": org["name"],
        "sender_name": org["name"],
        "sender": org["sender"],
        "reply_to": org["reply_to"],
        "postal_address": org["postal_address"],
        "base_url": org["base_url"],
        "list_id": host,
        "unsubscribe_mailto": org["reply_to"],
        "timezone": "Europe/Stockholm",
    }


def _toml_string(value: str) -> str:
    # JSON's string escapes are a subset of TOML basic strings' (control characters, which
    # TOML also forbids raw, are refused by the validators).
    return json.dumps(value, ensure_ascii=False)


def config_text(org: Mapping[str, str], *, require_approval: bool = True) -> str:
    """The embedded defaults with ORG as the [organisation] table and `[workflow]
    require_approval` set (true for a real site, false for the demo), comments kept."""
    lines = default_config_text().splitlines(keepends=True)
    out: list[str] = []
    section = None
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("["):
            section = stripped
        if section == "[organisation]":
            key = stripped.partition("=")[0].strip()
            if "=" in stripped and not stripped.startswith("#") and key in org:
                line = f"{key} = {_toml_string(org[key])}\n"
        if section == "[workflow]" and stripped.startswith("# require_approval ="):
            line = f"require_approval = {'true' if require_approval else 'false'}\n"
        out.append(line)
    text = "".join(out)
    data = tomllib.loads(text)
    written = data["organisation"]
    if any(written.get(key) != value for key, value in org.items()):
        raise AssertionError(f"defaults.toml's [organisation] lacks a key of {sorted(org)}")
    if data.get("workflow", {}).get("require_approval") is not require_approval:
        raise AssertionError("defaults.toml's [workflow] lacks '# require_approval = true'")
    return text


def write_config(root: Path, org: Mapping[str, str], *, require_approval: bool = True) -> Path:
    """Write ROOT/newsletter.toml with ORG (see `organisation`); never replaces one. A real
    site requires approval before sending; the demo (REQUIRE_APPROVAL false) does not."""
    path = root / CONFIG_NAME
    if path.exists():
        raise FileExistsError(path)
    text = config_text(org, require_approval=require_approval)
    with atomic_write(path) as fh:
        fh.write(text)
    return path


def differences(org: Organisation, values: Mapping[str, str]) -> list[str]:
    """The ASKED keys whose VALUES (validated) differ from ORG's, e.g. flags given to `init`
    on a site that already has its newsletter.toml."""
    return [key for key, raw in values.items()
            if raw is not None and validate(key, raw) != getattr(org, key)]


def is_demo_address(address: str) -> bool:
    """Whether ADDRESS is at example.se or a subdomain of it (demo and test data)."""
    domain = address.rpartition("@")[2].lower()
    return domain == DEMO_DOMAIN or domain.endswith("." + DEMO_DOMAIN)


def demo_fields(org: Organisation) -> list[str]:
    """The [organisation] keys that still hold the demo's values (an example.se address or
    host, "(demo)" in the name, the demo's postal address); empty for a real site."""
    demo = demo_organisation()
    found = []
    if "(demo)" in org.name or org.name == demo["name"]:
        found.append("name")
    for key in ("sender", "reply_to", "unsubscribe_mailto"):
        if is_demo_address(getattr(org, key)):
            found.append(key)
    if org.postal_address == demo["postal_address"]:
        found.append("postal_address")
    host = urlsplit(org.base_url).hostname or ""
    if is_demo_address("@" + host):
        found.append("base_url")
    if is_demo_address("@" + org.list_id):
        found.append("list_id")
    return found
