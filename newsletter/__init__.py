"""A monthly newsletter and webinar mailing system for an association of Swedish municipalities."""

__version__ = "0.1.0"
