"""Quanta's shared core: settings, registry, data formats, base models, tenancy and the CLI."""

__version__ = "0.1.0"
