"""The compacted topics' readers (livemetrics/compacted.py: the seller keys, the notification channels) when the
topics are deleted and created again (an operator's mistake, a restore) while they run, on the real broker: the
records written to the new topics reach every running reader."""

from __future__ import annotations

import msgspec
import pytest
from confluent_kafka.admin import AdminClient

from api.notify.channels import ChannelBook, ChannelWriter, new_channel
from livemetrics import keys
from livemetrics.kafka_config import admin_config
from livemetrics.topics import create_topics
from tests.support.servers import wait_until

pytestmark = pytest.mark.integration


def test_keys_and_channels_written_to_recreated_topics_reach_the_running_readers(settings):
    topics = [settings.topic("seller-keys"), settings.topic("seller-channels")]
    kek = settings.key_encryption_key.get_secret_value()
    # Kept alive to the end: librdkafka can abort when an admin client is closed mid-request (#3663).
    admin = AdminClient(admin_config(settings))
    registry, book = keys.KeyRegistry(settings).start(), ChannelBook(settings).start()
    writer = ChannelWriter(settings)
    try:
        assert registry.ready and book.ready
        # Three recreations: whether the old code's jump to the end skips a record depends on when the reader first
        # fetches from the new log (before or after the record lands there); one round missed it in 2 of 3 runs.
        for round_ in range(3):
            # The old logs are longer than the new ones will be: the readers' positions lie past the new logs' ends.
            old = [keys.new_key("pk", "shop-a")[1] for _ in range(20)]
            keys.publish_all(settings, old)
            for i in range(20):
                ch = new_channel("shop-a", "email", f"a{i}@example.com", kek)[0]
                writer.write(ch.channel_id, msgspec.json.encode(ch))
            assert registry.wait_for(old[-1].key_id, 30)
            wait_until(lambda: book.get(ch.channel_id) == ch, 30, what="the old channels read")

            for fut in admin.delete_topics(topics, operation_timeout=30).values():
                fut.result()
            wait_until(lambda: not set(topics) & set(admin.list_topics(timeout=10).topics), 60, what="deleted")
            create_topics(settings)

            browser, rec = keys.new_key("pk", f"shop-b{round_}")
            keys.publish(settings, rec)
            ch = new_channel(f"shop-b{round_}", "email", "b@example.com", kek)[0]
            writer.write(ch.channel_id, msgspec.json.encode(ch))
            assert registry.wait_for(rec.key_id, 60), f"round {round_}: the new key never reached the registry"
            assert registry.authenticate(browser, ("browser",)) == rec
            wait_until(lambda: book.get(ch.channel_id) == ch, 60, what=f"round {round_}: the new channel in the book")
            assert registry._thread.is_alive() and book._thread.is_alive()
    finally:
        writer.close()
        registry.stop()
        book.stop()
