"""Shared core of livemetrics: the event contract, settings, Kafka plumbing and the CLI."""

__version__ = "0.1.0"
