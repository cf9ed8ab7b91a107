"""A key registry that has not read the seller-keys topic to its end yet (a gateway or API started while
Kafka is away): it knows no key; ``ready`` says whether it has read the topic (a test sets it)."""

from __future__ import annotations


class UnreadKeys:
    ready = False

    def authenticate(self, presented, kinds):
        return None

    def authenticate_id(self, key_id):
        return None

    def server_secret(self, key_id):
        return None
