"""Imports every command module so that each registers its command on the shared app."""

from analysis.cli import run  # noqa: F401
