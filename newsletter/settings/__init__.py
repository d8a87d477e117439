"""Settings: embedded defaults < newsletter.toml < NEWSLETTER_* environment < flags, loaded once.

This file only assembles the package's public names; its modules never import it:
`model` (the dataclasses, `Settings`), `reader` (`Reader`: the one way a value is read and
checked), `tables` (each table's checks) and `load` (`load_settings`, `site_language`,
`ensure_secret_key`).
"""

from .load import ensure_secret_key, load_settings, saved_branding, site_language
from .model import (
    BRANDING_FILE,
    CONFIG_NAME,
    MAX_FEED_NAME,
    MAX_SLUG,
    MIN_CONTRAST,
    SECRET_FILE,
    Area,
    Branding,
    ConsoleSettings,
    Feed,
    IntakeSettings,
    Lead,
    Organisation,
    RetentionSettings,
    Settings,
    SignupSettings,
    TrackingSettings,
    TransportSettings,
    WorkerSettings,
    WorkflowSettings,
    contrast_with_white,
    default_config_text,
)

__all__ = [
    "BRANDING_FILE", "CONFIG_NAME", "MAX_FEED_NAME", "MAX_SLUG", "MIN_CONTRAST", "SECRET_FILE",
    "Area", "Branding",
    "ConsoleSettings", "Feed", "IntakeSettings", "Lead", "Organisation", "RetentionSettings",
    "Settings", "SignupSettings", "TrackingSettings", "TransportSettings", "WorkerSettings",
    "WorkflowSettings", "contrast_with_white", "default_config_text", "ensure_secret_key",
    "load_settings", "saved_branding", "site_language",
]
