"""Exceptions raised for bad input, each naming what is wrong and where."""

from __future__ import annotations


class ParetochainError(Exception):
    """Base class of the errors this package raises on purpose."""


class ConfigError(ParetochainError, ValueError):
    """A configuration value is missing, unknown or out of range."""


class DataError(ParetochainError, ValueError):
    """A data file (demand history, routing instance) cannot be trusted."""


class ActionError(ParetochainError, ValueError):
    """An action lies outside the action space or breaks the action mask."""


class PolicyFileError(ParetochainError, ValueError):
    """A checkpoint or exported policy file is truncated, corrupted or of the wrong kind."""


class ParetochainWarning(UserWarning):
    """Base class of the warnings this package issues (the command line prints each as one line)."""


class CheckpointWarning(ParetochainWarning):
    """A checkpoint was skipped (unreadable, failed checksum, or refused): an older one is used."""
