"""orderflow_client: read orderflow's event log from Python.

Decodes the Cap'n Proto Envelope of orderflow's Kafka records with pycapnp
from the repository's schemas (loaded at run time, see schema.py), upcasts
older schema versions to the current meaning exactly as the C++ does
(events.upcast_to_current), and reads topics with confluent-kafka (kafka.py).
See clients/python/README.md.
"""

from .events import (CONTENT_TYPE, HEADER_CONTENT_TYPE, HEADER_EVENT_TYPE, HEADER_SCHEMA_VERSION, DecodeError, Event,
                     NewerSchemaError, decode_event, encode_event, format_time, record_headers, summarize,
                     upcast_to_current)
from .kafka import (DEAD_LETTER_TOPIC, INVENTORY_TOPIC, NOTIFICATIONS_HIGH_TOPIC, NOTIFICATIONS_LOW_TOPIC,
                    ORDERS_TOPIC, Record, TopicError, append_event, cluster_name, follow, producer, read_log)
from .orders import OrderState, Orders
from .schema import CURRENT_SCHEMA_VERSION, default_schema_dir, load_events_schema

__all__ = [
    "CONTENT_TYPE", "CURRENT_SCHEMA_VERSION", "DEAD_LETTER_TOPIC", "DecodeError", "Event", "HEADER_CONTENT_TYPE",
    "HEADER_EVENT_TYPE", "HEADER_SCHEMA_VERSION", "INVENTORY_TOPIC", "NOTIFICATIONS_HIGH_TOPIC",
    "NOTIFICATIONS_LOW_TOPIC", "NewerSchemaError", "ORDERS_TOPIC", "OrderState", "Orders", "Record", "TopicError",
    "append_event", "cluster_name", "decode_event", "default_schema_dir", "encode_event", "follow", "format_time",
    "load_events_schema", "producer", "read_log", "record_headers", "summarize", "upcast_to_current",
]
