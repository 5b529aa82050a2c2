"""Reading orderflow's topics with confluent-kafka.

Topic names: orderflow's `--topic-prefix P` (or $ORDERFLOW_TOPIC_PREFIX) puts P
in front of every topic and consumer group name, with no separator added
(eventstore::ClusterName): prefix "demo." reads "demo.orders.events". The
readers here take the unprefixed names and the prefix, like the C++ does, and
report records under the unprefixed topic name.

The readers assign partitions directly (no consumer group membership, no
committed offsets): reading never disturbs orderflow's own consumers.
"""

import dataclasses
import time
import uuid
from typing import Dict, Iterator, Optional, Sequence, Tuple

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaError, KafkaException, Producer, TopicPartition

from .events import Event, decode_or_error, encode_event, record_headers

ORDERS_TOPIC = "orders.events"
INVENTORY_TOPIC = "inventory.events"
NOTIFICATIONS_HIGH_TOPIC = "notifications.high"
NOTIFICATIONS_LOW_TOPIC = "notifications.low"
DEAD_LETTER_TOPIC = "orders.dlq"


def cluster_name(topic, topic_prefix=""):
    """The name of `topic` (or a group id) on the cluster: prefix + topic."""
    return (topic_prefix or "") + topic


@dataclasses.dataclass
class Record:
    """One Kafka record and its decoded event (or why it did not decode)."""

    topic: str  # without the prefix
    partition: int
    offset: int
    timestamp_ms: int  # the record's Kafka timestamp
    key: str
    headers: Dict[str, str]
    value: bytes
    event: Optional[Event]
    error: Optional[str]  # None when `event` is set

    @property
    def position(self):
        """"P:O", as orderflow names a record's place in a topic."""
        return "%d:%d" % (self.partition, self.offset)


class TopicError(RuntimeError):
    pass


def _consumer(brokers, topic_prefix, client_id, config):
    conf = {
        "bootstrap.servers": brokers,
        "client.id": client_id,
        # Needed by the client library; never joined nor committed (partitions are assigned).
        "group.id": cluster_name("%s-%s" % (client_id, uuid.uuid4().hex[:8]), topic_prefix),
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "socket.nagle.disable": True,
        "fetch.wait.max.ms": 10,
    }
    conf.update(config or {})
    return Consumer(conf)


def _partitions(consumer, name, timeout):
    md = consumer.list_topics(name, timeout=timeout)
    t = md.topics.get(name)
    if t is None or t.error is not None or not t.partitions:
        raise TopicError("topic %s does not exist on the cluster (is the topic prefix right? "
                         "`orderflow up --brokers ...` creates orderflow's topics)" % name)
    return sorted(t.partitions)


def _to_record(msg, topic_prefix):
    name = msg.topic()
    topic = name[len(topic_prefix):] if topic_prefix and name.startswith(topic_prefix) else name
    headers = {}
    for k, v in msg.headers() or []:
        headers[k] = v.decode("utf-8", "replace") if v is not None else ""
    value = msg.value() or b""
    key = msg.key().decode("utf-8", "replace") if msg.key() is not None else ""
    event, error = decode_or_error(value)
    if event is not None and event.order_id != key:
        # What the projector refuses too (projections RejectionOf).
        error = "record key '%s' does not match the event's order id '%s'" % (key, event.order_id)
    _, ts = msg.timestamp()
    return Record(topic=topic, partition=msg.partition(), offset=msg.offset(), timestamp_ms=ts, key=key,
                  headers=headers, value=value, event=event if error is None else None, error=error)


def read_log(brokers, topics: Sequence[str] = (ORDERS_TOPIC,), topic_prefix="", config=None,
             timeout=60.0) -> Iterator[Record]:
    """Every record of `topics` from offset zero up to each partition's end as
    it was when reading started, partition by partition in offset order
    (partitions interleaved as they arrive). Raises TopicError for a missing
    topic, TimeoutError if the end is not reached within `timeout` seconds of
    no progress."""
    consumer = _consumer(brokers, topic_prefix, "orderflow-python-read", config)
    try:
        assignment = []
        end: Dict[Tuple[str, int], int] = {}
        for topic in topics:
            name = cluster_name(topic, topic_prefix)
            for p in _partitions(consumer, name, timeout):
                low, high = consumer.get_watermark_offsets(TopicPartition(name, p), timeout=timeout)
                if high > low:
                    end[(name, p)] = high
                    assignment.append(TopicPartition(name, p, OFFSET_BEGINNING))
        if not assignment:
            return
        consumer.assign(assignment)
        pending = set(end)
        deadline = time.monotonic() + timeout
        while pending:
            msgs = consumer.consume(num_messages=5000, timeout=0.5)
            if not msgs and time.monotonic() > deadline:
                raise TimeoutError("reading stopped short of the end of %s after %.0f s"
                                   % (", ".join("%s[%d]" % tp for tp in sorted(pending)), timeout))
            for msg in msgs:
                err = msg.error()
                tp = (msg.topic(), msg.partition())
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        pending.discard(tp)  # transaction markers may end the log after the last record
                        continue
                    raise KafkaException(err)
                deadline = time.monotonic() + timeout
                if tp not in pending or msg.offset() >= end[tp]:
                    continue  # appended after reading started
                yield _to_record(msg, topic_prefix)
                if msg.offset() + 1 >= end[tp]:
                    pending.discard(tp)
    finally:
        consumer.close()


def follow(brokers, topics: Sequence[str] = (ORDERS_TOPIC,), topic_prefix="", from_beginning=False,
           config=None, poll_timeout=0.5, timeout=30.0) -> Iterator[Optional[Record]]:
    """Records of `topics` as they are appended, forever: from offset zero with
    `from_beginning`, else from each partition's current end. Yields None
    after each poll that brought nothing, so a caller can check for a stop
    request. Close the generator (or break out of the loop) to stop."""
    consumer = _consumer(brokers, topic_prefix, "orderflow-python-feed", config)
    try:
        assignment = []
        for topic in topics:
            name = cluster_name(topic, topic_prefix)
            start = OFFSET_BEGINNING if from_beginning else OFFSET_END
            assignment += [TopicPartition(name, p, start) for p in _partitions(consumer, name, timeout)]
        consumer.assign(assignment)
        while True:
            msgs = consumer.consume(num_messages=500, timeout=poll_timeout)
            got = False
            for msg in msgs:
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        continue
                    if not err.fatal():
                        continue  # transient (broker down, ...): the client retries
                    raise KafkaException(err)
                got = True
                yield _to_record(msg, topic_prefix)
            if not got:
                yield None
    finally:
        consumer.close()


def producer(brokers, config=None):
    """A producer configured as orderflow's (eventstore Producer::Create):
    idempotent, acks=all, snappy, and librdkafka's default key partitioner, so a
    key lands on the partition orderflow would pick."""
    conf = {
        "bootstrap.servers": brokers,
        "client.id": "orderflow-python",
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": "snappy",
        "linger.ms": 5,
        "partitioner": "consistent_random",
        "socket.nagle.disable": True,
    }
    conf.update(config or {})
    return Producer(conf)


def append_event(prod, event, topic=ORDERS_TOPIC, topic_prefix="", version=None, on_delivery=None):
    """Appends `event` as orderflow's producer does (Producer::AppendEvent): key
    = order id, value = packed Envelope of schema `version` (default current),
    headers event-type, schema-version, content-type."""
    value = encode_event(event, version)
    while True:
        try:
            prod.produce(cluster_name(topic, topic_prefix), key=event.order_id.encode(), value=value,
                         headers=record_headers(event), on_delivery=on_delivery)
            break
        except BufferError:  # local queue full: serve delivery reports to make room
            prod.poll(0.1)
    prod.poll(0)
