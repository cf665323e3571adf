"""A consumer that knows nothing but the published definitions (run as a script by the tests).

    python definition_only_consumer.py BOOTSTRAP EVENTS_TOPIC DEFINITIONS_TOPIC COUNT

Reads COUNT events from the start of EVENTS_TOPIC, decodes each with the definition published on
DEFINITIONS_TOPIC and prints one JSON line per event: {"stream_id", "doc", "types"}. The tests run it with
DATAMOVER_CONFIG_DIR pointing at an empty folder, so reading any YAML config would fail.
"""

from __future__ import annotations

import json
import sys
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from datamover.streams import definition as definition_module
from datamover.streams.registry import DefinitionRegistry


def main(bootstrap: str, events_topic: str, definitions_topic: str, count: int) -> None:
    def consumer() -> Consumer:
        return Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"definition-only-{uuid.uuid4()}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
            }
        )

    registry = DefinitionRegistry(consumer(), definitions_topic, wait_s=20)
    events = consumer()
    events.assign([TopicPartition(events_topic, 0, OFFSET_BEGINNING)])
    seen = 0
    while seen < count:
        message = events.poll(30)
        if message is None:
            raise SystemExit(f"only {seen} of {count} events arrived")
        if message.error() is not None:
            continue
        definition, doc = registry.decode(message.value())
        types = {
            a.name: a.type.value for g in ("meta", "correlation", "payload") for a in definition.group(g)
        }
        print(json.dumps({"stream_id": definition.stream_id, "doc": doc, "types": types}), flush=True)
        seen += 1
    # proof that nothing was read from streams.yaml in this process
    assert definition_module.load_streams.cache_info().currsize == 0


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
