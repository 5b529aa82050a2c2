"""orderflow events in Python: decode, upcast, summarize, encode.

Mirrors eventstore/codec.cc: a record's value is a packed Cap'n Proto
`Envelope`; `decode_event` reads it with the current schema, checks what
`ReadEnvelope` checks, and runs `upcast_to_current`, so every reader sees the
current meaning while `Event.schema_version` keeps the version the record was
written with. `summarize` gives the one-line summary `orderflow history`
prints (domain::Summarize), word for word.
"""

import dataclasses
import datetime
from typing import Any, Dict, Optional

from .schema import CURRENT_SCHEMA_VERSION, load_events_schema, payload_fields

# Kafka header names and the content type every record carries (eventstore/codec.h).
HEADER_EVENT_TYPE = "event-type"
HEADER_SCHEMA_VERSION = "schema-version"
HEADER_CONTENT_TYPE = "content-type"
CONTENT_TYPE = "application/x-capnp-packed; schema=orderflow.Envelope"

# The reader's limits (eventstore/capnp_util.h ReadPackedRoot) and the most
# lines an event may list (codec.cc kMaxEventLines).
_TRAVERSAL_LIMIT_WORDS = 1 << 20
_NESTING_LIMIT = 16
_MAX_EVENT_LINES = 1000


class DecodeError(ValueError):
    """The bytes are not an orderflow event (what the C++ calls kCorruption)."""


class NewerSchemaError(DecodeError):
    """The record was written by a newer schema version than this client knows
    (the C++ kFailedPrecondition: upgrade, the record is not garbage)."""


def type_name(field):
    """Union member name -> event type name: "orderPlaced" -> "OrderPlaced" (domain::EventTypeName)."""
    return field[:1].upper() + field[1:]


def field_name(event_type):
    """Event type name -> union member name: "OrderPlaced" -> "orderPlaced"."""
    return event_type[:1].lower() + event_type[1:]


@dataclasses.dataclass
class Event:
    """One decoded event. `payload` holds the union member's fields under the
    schema's names (camelCase), enums as their names, lists of LineItem as
    lists of dicts; after decoding it has every field of the current schema."""

    event_id: bytes
    order_id: str  # Envelope.aggregateId: the order id (the SKU on inventory.events)
    occurred_at_ms: int
    schema_version: int  # as written; the payload has the current meaning
    type: str  # "OrderPlaced", ...
    payload: Dict[str, Any]
    producer: str = ""
    causation_id: bytes = b""
    correlation_id: bytes = b""

    @property
    def event_id_str(self):
        """The id as orderflow prints it (domain::UuidToString): 8-4-4-4-12 lowercase hex."""
        return uuid_string(self.event_id)

    @property
    def time(self):
        """occurred_at as orderflow prints it (services::FormatTime)."""
        return format_time(self.occurred_at_ms)


def uuid_string(raw):
    h = raw.hex()
    return "%s-%s-%s-%s-%s" % (h[0:8], h[8:12], h[12:16], h[16:20], h[20:32])


def format_time(epoch_ms):
    """YYYY-MM-DDTHH:MM:SS.mmmZ in UTC, as services::FormatTime."""
    secs, ms = divmod(epoch_ms, 1000)
    t = datetime.datetime.fromtimestamp(secs, tz=datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % ms


def _text(value):
    # orderflow's encoder sets text from C strings; its reader stops at the first NUL too.
    return value.split("\0", 1)[0] if isinstance(value, str) else value


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return _text(value)


def _check_id(raw, required, what):
    if not raw and not required:
        return b""
    if len(raw) != 16:
        raise DecodeError("%s must be 16 bytes, got %d" % (what, len(raw)))
    return bytes(raw)


def _check_enum(reader, field, type_name_, limit):
    raw = getattr(reader, field).raw
    if raw > limit:
        raise DecodeError("unknown %s %d" % (type_name_, raw))


def decode_event(data, schema_dir=None, upcast=True):
    """Parses one record value (a packed Envelope of this or an older schema
    version) into an Event and upcasts it. Raises DecodeError for bytes that
    are not an orderflow event, NewerSchemaError for a newer schema version."""
    module = load_events_schema(None, schema_dir)
    if not data:
        raise DecodeError("empty event record")
    try:
        env = module.Envelope.from_bytes_packed(
            bytes(data), traversal_limit_in_words=_TRAVERSAL_LIMIT_WORDS, nesting_limit=_NESTING_LIMIT)
        version = env.schemaVersion
        if version == 0:
            raise DecodeError("schema version 0 is not a valid version")
        if version > CURRENT_SCHEMA_VERSION:
            raise NewerSchemaError(
                "event has schema version %d, newer than this client's %d; upgrade the client and its schemas"
                % (version, CURRENT_SCHEMA_VERSION))
        event_id = _check_id(env.eventId, True, "event id")
        causation = _check_id(env.causationId, False, "causation id")
        correlation = _check_id(env.correlationId, False, "correlation id")
        order_id = _text(env.aggregateId)
        if not order_id:
            raise DecodeError("aggregate id is empty")
        try:
            which = env.payload.which()
        except Exception as e:  # a union member this schema does not have
            raise DecodeError("unknown event type (%s)" % e) from None
        member = getattr(env.payload, which)
        if which in ("orderPlaced", "inventoryReserved") and len(member.lines) > _MAX_EVENT_LINES:
            raise DecodeError("an event lists more lines than any order may have")
        if which == "orderCancelled":
            _check_enum(member, "source", "cancel source", 3)
        if which in ("notificationSent", "notificationRequested"):
            _check_enum(member, "priority", "notification priority", 1)
        payload = _plain(member.to_dict(verbose=True))
        event = Event(event_id=event_id, order_id=order_id, occurred_at_ms=env.occurredAtMs,
                      schema_version=version, type=type_name(which), payload=payload,
                      producer=_text(env.producer), causation_id=causation, correlation_id=correlation)
    except DecodeError:
        raise
    except Exception as e:  # pycapnp raises KjException (and others) for malformed bytes
        raise DecodeError("malformed event record: %s" % str(e).split("\n", 1)[0]) from None
    if upcast:
        upcast_to_current(event)
    return event


def upcast_to_current(event):
    """Rewrites an event decoded from an older schema version into the current
    meaning, in place (eventstore/codec.cc UpcastToCurrent). Idempotent; a
    no-op for current events. v1 -> v2:
      - NotificationSent and NotificationRequested: every '_' in the template
        name becomes '.' ("order_placed" -> "order.placed");
      - PaymentAuthorized with an empty method: the method is "card" (the only
        one v1 knew)."""
    if event.schema_version < 2:
        if event.type in ("NotificationSent", "NotificationRequested"):
            event.payload["template"] = event.payload.get("template", "").replace("_", ".")
        if event.type == "PaymentAuthorized" and not event.payload.get("method"):
            event.payload["method"] = "card"
    return event


def encode_event(event, version=None, schema_dir=None):
    """Serializes `event` as a packed Envelope with the schema of `version`
    (default: the current one; e.g. 1 writes as v1 code did, and a v2-only
    field in the payload is an error). Empty text fields are left unset, as
    orderflow's encoder does. Envelope.schemaVersion is event.schema_version."""
    module = load_events_schema(version, schema_dir)
    which = field_name(event.type)
    if which not in payload_fields(module):
        raise ValueError("event type %s is not in schema version %s" % (event.type, version or CURRENT_SCHEMA_VERSION))
    payload = {k: v for k, v in event.payload.items() if v != ""}
    known = module.Envelope.new_message().payload.init(which).schema.fields
    unknown = sorted(set(payload) - set(known))
    if unknown:
        raise ValueError("%s of schema version %s has no field %s" % (
            event.type, version or CURRENT_SCHEMA_VERSION, ", ".join(unknown)))
    fields = dict(eventId=event.event_id, aggregateId=event.order_id, occurredAtMs=event.occurred_at_ms,
                  schemaVersion=event.schema_version, producer=event.producer, payload={which: payload})
    if event.causation_id:
        fields["causationId"] = event.causation_id
    if event.correlation_id:
        fields["correlationId"] = event.correlation_id
    try:
        message = module.Envelope.new_message(**fields)
    except Exception as e:
        raise ValueError("cannot encode %s with schema version %s: %s"
                         % (event.type, version or CURRENT_SCHEMA_VERSION, e)) from None
    return message.to_bytes_packed()


def record_headers(event):
    """The Kafka headers orderflow's producer sets on an event record (Producer::AppendEvent)."""
    return [(HEADER_EVENT_TYPE, event.type.encode()),
            (HEADER_SCHEMA_VERSION, str(event.schema_version).encode()),
            (HEADER_CONTENT_TYPE, CONTENT_TYPE.encode())]


def _money(minor):
    sign = "-" if minor < 0 else ""
    whole, cents = divmod(abs(minor), 100)
    return "%s%d.%02d" % (sign, whole, cents)


def summarize(event):
    """One line about the event, exactly as domain::Summarize (`orderflow history`)."""
    p, t = event.payload, event.type
    if t == "OrderPlaced":
        units = sum(l["quantity"] for l in p["lines"])
        return "customer %s, %d line(s), %d unit(s), total %s %s" % (
            p["customerId"], len(p["lines"]), units, _money(p["totalMinor"]), p["currency"])
    if t == "PaymentAuthorized":
        return "payment %s authorized for %s" % (p["paymentId"], _money(p["amountMinor"]))
    if t == "PaymentDeclined":
        return "payment of %s declined: %s" % (_money(p["amountMinor"]), p["reason"])
    if t == "InventoryReserved":
        return "reserved %d line(s), reservation %s" % (len(p["lines"]), p["reservationId"])
    if t == "InventoryRejected":
        return "sku %s: requested %d, available %d%s" % (
            p["sku"], p["requested"], p["available"], " (%s)" % p["reason"] if p["reason"] else "")
    if t == "PaymentRefunded":
        return "refunded %s of payment %s: %s" % (_money(p["amountMinor"]), p["paymentId"], p["reason"])
    if t == "OrderShipped":
        return "shipped with %s, tracking %s" % (p["carrier"], p["trackingNumber"])
    if t == "OrderDelivered":
        return "delivered" + (", received by " + p["receivedBy"] if p["receivedBy"] else "")
    if t == "OrderCancelled":
        return "cancelled by %s: %s" % (p["source"], p["reason"])
    if t == "NotificationSent":
        return "%s priority '%s' to %s" % (p["priority"], p["template"], p["recipient"])
    if t == "InventoryLineReserved":
        return "reserved %d x %s" % (p["quantity"], p["sku"])
    if t == "InventoryLineRejected":
        return "sku %s: requested %d, available %d" % (p["sku"], p["requested"], p["available"])
    if t == "InventoryLineReleased":
        return "released %d x %s" % (p["quantity"], p["sku"])
    if t == "StockAdded":
        return "added %d x %s" % (p["quantity"], p["sku"])
    if t == "StockReservationRequested":
        return "reserve %d x %s for order %s" % (p["quantity"], p["sku"], p["orderId"])
    if t == "StockReleaseRequested":
        return "release %d x %s of order %s" % (p["quantity"], p["sku"], p["orderId"])
    if t == "NotificationRequested":
        return "send '%s' to %s" % (p["template"], p["recipient"])
    return t


def decode_or_error(data, schema_dir=None) -> "tuple[Optional[Event], Optional[str]]":
    """(event, None) or (None, the reason it does not decode)."""
    try:
        return decode_event(data, schema_dir), None
    except DecodeError as e:
        return None, str(e)
