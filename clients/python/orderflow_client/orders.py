"""A small fold of orders.events into per-order state, as orderflow's projector does.

`Orders.apply(record)` follows projections/store.cc and domain/order.cc Apply:
records that do not decode (or whose key is not the event's order id) are
rejected; an event whose id the order already applied is a duplicate (a
redelivery) and is dropped; status moves only along the lifecycle, and an
out-of-order event still counts (version, history) but never moves an order
backwards or out of a terminal state. The status names are orderflow's
("placed", "payment_authorized", ...), as in `orderflow analytics`.
"""

import collections
import dataclasses
from typing import Dict, List, Optional

NONE, PLACED, PAYMENT_AUTHORIZED, PAYMENT_DECLINED = "none", "placed", "payment_authorized", "payment_declined"
INVENTORY_RESERVED, INVENTORY_REJECTED = "inventory_reserved", "inventory_rejected"
SHIPPED, DELIVERED, CANCELLED = "shipped", "delivered", "cancelled"

_CAN_CANCEL = (PLACED, PAYMENT_AUTHORIZED, PAYMENT_DECLINED, INVENTORY_RESERVED, INVENTORY_REJECTED)


@dataclasses.dataclass
class OrderState:
    order_id: str
    status: str = NONE
    customer_id: str = ""
    total_minor: int = 0
    currency: str = ""
    paid_minor: int = 0
    refunded_minor: int = 0
    payment_id: str = ""
    payment_method: str = ""
    shipping_address: str = ""
    placed_at_ms: int = 0
    delivered_at_ms: int = 0
    notifications_sent: int = 0
    version: int = 0  # events applied
    event_ids: set = dataclasses.field(default_factory=set)
    history: List = dataclasses.field(default_factory=list)  # the applied records, in log order


def apply(s, event):
    """Applies one (upcast) event to `s` (domain::Apply, the fields kept here)."""
    s.version += 1
    s.event_ids.add(event.event_id)
    p, t = event.payload, event.type

    def move_to(to, *frm):
        if s.status in frm:
            s.status = to

    if t == "OrderPlaced":
        if s.status != NONE:
            return
        s.status = PLACED
        s.customer_id, s.total_minor, s.currency = p["customerId"], p["totalMinor"], p["currency"]
        s.shipping_address = p["shippingAddress"]
        s.placed_at_ms = event.occurred_at_ms
    elif t == "PaymentAuthorized":
        s.paid_minor += p["amountMinor"]
        s.payment_id, s.payment_method = p["paymentId"], p["method"]
        move_to(PAYMENT_AUTHORIZED, PLACED)
    elif t == "PaymentDeclined":
        move_to(PAYMENT_DECLINED, PLACED)
    elif t == "InventoryReserved":
        move_to(INVENTORY_RESERVED, PLACED, PAYMENT_AUTHORIZED)
    elif t == "InventoryRejected":
        move_to(INVENTORY_REJECTED, PLACED, PAYMENT_AUTHORIZED)
    elif t == "PaymentRefunded":
        s.refunded_minor += p["amountMinor"]
    elif t == "OrderShipped":
        move_to(SHIPPED, INVENTORY_RESERVED)
    elif t == "OrderDelivered":
        if s.status == SHIPPED:
            s.status = DELIVERED
            s.delivered_at_ms = event.occurred_at_ms
    elif t == "OrderCancelled":
        move_to(CANCELLED, *_CAN_CANCEL)
    elif t == "NotificationSent":
        s.notifications_sent += 1
    # Per-line inventory events and the other topics' events change no status.


class Orders:
    """Per-order state folded from orders.events records, in log order."""

    def __init__(self):
        self.orders: Dict[str, OrderState] = {}
        self.applied = 0
        self.duplicates = 0
        self.rejected: List = []  # (record, reason)

    def apply(self, record):
        """Applies one Record (see kafka.Record). Returns True if it was applied."""
        if record.event is None:
            self.rejected.append((record, record.error))
            return False
        event = record.event
        state = self.orders.get(event.order_id)
        if state is None:
            state = self.orders[event.order_id] = OrderState(event.order_id)
        if event.event_id in state.event_ids:
            self.duplicates += 1
            return False
        apply(state, event)
        state.history.append(record)
        self.applied += 1
        return True

    def by_status(self):
        """Orders per status, as `orderflow analytics` counts them (orders never placed are not listed)."""
        return dict(collections.Counter(o.status for o in self.orders.values() if o.status != NONE))

    def get(self, order_id) -> Optional[OrderState]:
        return self.orders.get(order_id)
