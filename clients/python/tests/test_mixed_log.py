"""kafka.PythonClientDecodesAMixedV1V2Log: the Python client reads a log that
holds both schema versions and agrees with orderflow's C++ read side.

Needs a real Kafka ($ORDERFLOW_TEST_KAFKA, the bootstrap list scripts/test.sh
starts) and the orderflow binary ($ORDERFLOW_BINARY, else build/cli/orderflow).
On a topic prefix of its own it:
  1. runs `orderflow up --simulate 200 --exit-when-done`: a v2 lifecycle log;
  2. appends, with pycapnp and the FROZEN v1 schema, 80 complete v1 order
     lifecycles (no shipping address, authorizations without a method, v1
     template names like "order_placed") and a few redelivered duplicates,
     keyed and with the headers orderflow's producer sets;
  3. rebuilds the RocksDB projection with `orderflow replay`;
  4. decodes every record with orderflow_client and checks what the C++ says:
     replay's record/applied/duplicate counts and end offsets, analytics'
     orders by status and revenue, every order's status, event count and
     payment method (`order list`), 20 orders' histories event by event (type,
     schema version, position, id, time and summary: `history`), and that v1
     events read as "card" payments and dotted template names.

Run: bash clients/python/tests/run.sh clients/python/tests/test_mixed_log.py
(ctest: kafka.PythonClientDecodesAMixedV1V2Log). ORDERFLOW_TEST_KEEP_TOPICS=1
keeps the topics, ORDERFLOW_TEST_KEEP_DIR=1 the data directories.
"""

import collections
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(HERE, ".."))

import orderflow_client as of  # noqa: E402

V1_ORDERS = 80
SIMULATED_ORDERS = 200
HISTORY_SAMPLE = 20
CATALOG = [("SKU-ESPRESSO", 2490), ("SKU-GRINDER", 12900), ("SKU-KETTLE", 5990), ("SKU-MUG", 1450),
           ("SKU-FILTER", 690), ("SKU-SCALE", 3990), ("SKU-DRIPPER", 2790), ("SKU-TAMPER", 3490)]


def binary():
    return os.environ.get("ORDERFLOW_BINARY") or os.path.join(ROOT, "build", "cli", "orderflow")


def orderflow(*args, timeout=120):
    """Runs the orderflow binary; returns stdout. Fails the test with its stderr on a non-zero exit."""
    proc = subprocess.run([binary(), *args], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError("orderflow %s exited %d: %s" % (" ".join(args), proc.returncode, proc.stderr.strip()))
    return proc.stdout


def orderflow_json(*args, timeout=120):
    return json.loads(orderflow(*args, "--json", timeout=timeout))


def v1_lifecycles(rng, now_ms):
    """80 complete v1 order lifecycles, as v1 code wrote them: lists of events
    (schema version 1, no v2 fields, v1 template names), plus the events to
    append a second time (redeliveries: the same event id)."""
    orders, redelivered = [], []
    for i in range(V1_ORDERS):
        order_id = "v1-order-%03d" % i
        customer = "cust-v1-%02d" % (i % 17)
        skus = rng.sample(CATALOG, rng.randint(1, 3))
        lines = [{"sku": sku, "quantity": rng.randint(1, 4), "unitPriceMinor": price} for sku, price in skus]
        total = sum(l["quantity"] * l["unitPriceMinor"] for l in lines)
        t = now_ms - 3_600_000 + i * 1000
        events = []

        def add(event_type, producer, payload):
            ev = of.Event(event_id=uuid.uuid4().bytes, order_id=order_id, occurred_at_ms=t + 10 * len(events),
                          schema_version=1, type=event_type, payload=payload, producer=producer,
                          causation_id=events[-1].event_id if events else b"",
                          correlation_id=events[0].event_id if events else b"")
            events.append(ev)
            return ev

        def notify(template, priority):
            add("NotificationSent", "notification", {"notificationId": "n-%s-%d" % (order_id, len(events)),
                                                     "template": template, "recipient": customer,
                                                     "priority": priority})

        add("OrderPlaced", "order", {"customerId": customer, "lines": lines, "totalMinor": total, "currency": "EUR"})
        kind = i % 4
        if kind == 2:  # declined, then cancelled by the payment service
            add("PaymentDeclined", "payment", {"reason": "card declined", "amountMinor": total})
            add("OrderCancelled", "payment", {"reason": "payment declined", "source": "payment"})
            notify("payment_declined", "high")
        else:
            paid = add("PaymentAuthorized", "payment", {"paymentId": "pay-" + order_id, "amountMinor": total})
            if i % 10 == 0:
                redelivered.append(paid)
            notify("order_placed", "low")
            if kind == 0:  # delivered
                add("InventoryReserved", "inventory", {"reservationId": "res-" + order_id, "lines": lines})
                add("OrderShipped", "shipping", {"carrier": "DHL", "trackingNumber": "TRK-V1-%03d" % i})
                add("OrderDelivered", "delivery", {"receivedBy": customer})
                notify("order_shipped", "low")
                notify("order_delivered", "high")
            else:
                if kind == 1:
                    add("OrderCancelled", "order", {"reason": "changed my mind", "source": "customer"})
                else:
                    add("InventoryRejected", "inventory", {"sku": skus[0][0], "requested": lines[0]["quantity"],
                                                           "available": 0, "reason": "insufficient stock"})
                    add("OrderCancelled", "inventory", {"reason": "out of stock", "source": "inventory"})
                add("PaymentRefunded", "payment", {"paymentId": "pay-" + order_id, "amountMinor": total,
                                                   "reason": "order cancelled"})
                notify("order_cancelled", "high")
        orders.append(events)
    return orders, redelivered


def delete_topics(brokers, prefix):
    from confluent_kafka.admin import AdminClient
    names = [of.cluster_name(t, prefix) for t in (of.ORDERS_TOPIC, of.INVENTORY_TOPIC, of.NOTIFICATIONS_HIGH_TOPIC,
                                                   of.NOTIFICATIONS_LOW_TOPIC, of.DEAD_LETTER_TOPIC)]
    admin = AdminClient({"bootstrap.servers": brokers})
    try:
        for f in admin.delete_topics(names, operation_timeout=10).values():
            f.result(timeout=20)
    except Exception as e:  # best effort: keeps the shared broker small
        print("note: deleting the test's topics: %s" % e, file=sys.stderr)


class MixedV1V2LogTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.brokers = os.environ.get("ORDERFLOW_TEST_KAFKA", "")
        if not cls.brokers:
            raise RuntimeError("ORDERFLOW_TEST_KAFKA is not set: start a broker with `bash scripts/kafka.sh start` "
                               "and export ORDERFLOW_TEST_KAFKA=<its bootstrap list>")
        cls.prefix = "kafka.PythonClientDecodesAMixedV1V2Log-%d-%d." % (os.getpid(), int(time.time()))
        cls.dir = tempfile.mkdtemp(prefix="orderflow-python-test.")
        cls.common = ["--brokers", cls.brokers, "--topic-prefix", cls.prefix]
        started = time.monotonic()

        # 1. A v2 log from the real services.
        orderflow("up", *cls.common, "--simulate", str(SIMULATED_ORDERS), "--exit-when-done",
                  "--data-dir", os.path.join(cls.dir, "live"), "--http", "off", "--transit-ms", "20",
                  "--log-level", "error", timeout=300)
        t_up = time.monotonic()

        # 2. v1 lifecycles, written with the frozen v1 schema as v1 code did.
        cls.v1_orders, cls.redelivered = v1_lifecycles(random.Random(16), int(time.time() * 1000))
        producer = of.producer(cls.brokers)
        failures = []

        def delivered(err, msg):
            if err is not None:
                failures.append(err)

        for events in cls.v1_orders:
            for ev in events:
                of.append_event(producer, ev, topic_prefix=cls.prefix, version=1, on_delivery=delivered)
        for ev in cls.redelivered:
            of.append_event(producer, ev, topic_prefix=cls.prefix, version=1, on_delivery=delivered)
        left = producer.flush(30)
        if left or failures:
            raise RuntimeError("appending the v1 events: %d undelivered, errors %s" % (left, failures[:3]))
        t_v1 = time.monotonic()

        # 3. The C++ read side, rebuilt from the mixed log.
        cls.replay = orderflow_json("replay", *cls.common, "--data-dir", os.path.join(cls.dir, "replayed"))
        cls.store = ["--data-dir", os.path.join(cls.dir, "replayed")]
        cls.analytics = orderflow_json("analytics", *cls.store)
        cls.listed = {}
        after = None
        while True:
            page = orderflow_json("order", "list", "--limit", "500", *(["--after", after] if after else []),
                                  *cls.store)
            cls.listed.update((o["order_id"], o) for o in page["orders"])
            after = page.get("next")
            if not after:
                break
        t_cpp = time.monotonic()

        # 4. The Python side: every record of orders.events.
        cls.records = list(of.read_log(cls.brokers, [of.ORDERS_TOPIC], topic_prefix=cls.prefix))
        cls.folded = of.Orders()
        for r in cls.records:
            cls.folded.apply(r)
        t_py = time.monotonic()
        print("\nsetup: up %.1f s, %d v1 events %.1f s, replay + analytics + order list %.1f s, "
              "python read %d records %.1f s" % (t_up - started, sum(map(len, cls.v1_orders)) + len(cls.redelivered),
                                                 t_v1 - t_up, t_cpp - t_v1, len(cls.records), t_py - t_cpp),
              file=sys.stderr)

    @classmethod
    def tearDownClass(cls):
        if not os.environ.get("ORDERFLOW_TEST_KEEP_DIR"):
            shutil.rmtree(getattr(cls, "dir", ""), ignore_errors=True)
        if getattr(cls, "brokers", "") and not os.environ.get("ORDERFLOW_TEST_KEEP_TOPICS"):
            delete_topics(cls.brokers, cls.prefix)

    def v1_ids(self):
        return {events[0].order_id for events in self.v1_orders}

    def test_every_record_decodes_with_the_headers_orderflow_sets(self):
        self.assertEqual([(r.position, r.error) for r in self.records if r.event is None], [])
        for r in self.records:
            self.assertEqual(r.topic, of.ORDERS_TOPIC)
            self.assertEqual(r.key, r.event.order_id, r.position)
            self.assertEqual(r.headers.get(of.HEADER_EVENT_TYPE), r.event.type, r.position)
            self.assertEqual(r.headers.get(of.HEADER_SCHEMA_VERSION), str(r.event.schema_version), r.position)
            self.assertEqual(r.headers.get(of.HEADER_CONTENT_TYPE), of.CONTENT_TYPE, r.position)
        versions = collections.Counter(r.event.schema_version for r in self.records)
        written_v1 = sum(map(len, self.v1_orders)) + len(self.redelivered)
        self.assertEqual(versions[1], written_v1, "every v1 record we wrote, and no other, reads as version 1")
        self.assertGreater(versions[2], SIMULATED_ORDERS * 5, versions)

    def test_replay_read_and_applied_the_same_records(self):
        self.assertEqual(self.replay["events"], len(self.records))
        self.assertEqual(self.replay["applied"], self.folded.applied)
        self.assertEqual(self.replay["duplicates_dropped"], self.folded.duplicates)
        self.assertEqual(self.folded.duplicates, len(self.redelivered))
        self.assertEqual(self.replay["records_rejected"], len(self.folded.rejected))
        self.assertEqual(self.replay["records_rejected"], 0)
        ends = collections.defaultdict(int)
        for r in self.records:
            ends["%s/%d" % (r.topic, r.partition)] = max(ends["%s/%d" % (r.topic, r.partition)], r.offset + 1)
        self.assertEqual({k: v for k, v in self.replay["offsets"].items() if v}, dict(ends))

    def test_orders_by_status_and_revenue_equal_analytics(self):
        self.assertEqual(self.folded.by_status(), self.analytics["orders_by_status"])
        orders = self.folded.orders.values()
        self.assertEqual(len(self.folded.orders), SIMULATED_ORDERS + V1_ORDERS)
        gross = sum(r.event.payload["amountMinor"] for o in orders for r in o.history
                    if r.event.type == "PaymentAuthorized")
        refunded = sum(o.refunded_minor for o in orders)
        self.assertEqual(self.analytics["revenue"]["gross_minor"], gross)
        self.assertEqual(self.analytics["revenue"]["refunded_minor"], refunded)
        # The v1 lifecycles end as written: a quarter each delivered, then cancelled three ways.
        v1 = collections.Counter(self.folded.get(i).status for i in self.v1_ids())
        self.assertEqual(v1, {"delivered": V1_ORDERS // 4, "cancelled": V1_ORDERS * 3 // 4})

    def test_every_order_has_the_status_event_count_and_payment_of_the_store(self):
        self.assertEqual(set(self.listed), set(self.folded.orders))
        for order_id, cpp in self.listed.items():
            py = self.folded.get(order_id)
            got = {"status": py.status, "version": py.version, "payment_method": py.payment_method,
                   "notifications_sent": py.notifications_sent, "paid_minor": py.paid_minor,
                   "refunded_minor": py.refunded_minor, "total_minor": py.total_minor,
                   "customer_id": py.customer_id, "shipping_address": py.shipping_address}
            self.assertEqual(got, {k: cpp[k] for k in got}, order_id)

    def test_event_counts_per_type_and_schema_version(self):
        applied = collections.Counter((r.event.type, r.event.schema_version)
                                      for o in self.folded.orders.values() for r in o.history)
        written = collections.Counter((ev.type, 1) for events in self.v1_orders for ev in events)
        self.assertEqual({k: n for k, n in applied.items() if k[1] == 1}, dict(written))
        self.assertEqual(applied[("OrderPlaced", 2)], SIMULATED_ORDERS)
        self.assertEqual(sum(applied.values()), self.replay["applied"])
        # Per order, the C++ history agrees type by type (sampled below) and in total (order list's version).
        for order_id, cpp in self.listed.items():
            self.assertEqual(len(self.folded.get(order_id).history), cpp["version"], order_id)

    def test_sampled_histories_equal_orderflow_history(self):
        rng = random.Random(7)
        v1 = sorted(self.v1_ids())
        v2 = sorted(set(self.folded.orders) - set(v1))
        sample = rng.sample(v1, HISTORY_SAMPLE // 2) + rng.sample(v2, HISTORY_SAMPLE // 2)
        for order_id in sample:
            cpp = orderflow_json("history", order_id, *self.store)["events"]
            py = [{"topic": r.topic, "partition": r.partition, "offset": r.offset, "type": r.event.type,
                   "schema_version": r.event.schema_version, "event_id": r.event.event_id_str,
                   "time": r.event.time, "record_time": of.format_time(r.timestamp_ms),
                   "producer": r.event.producer, "summary": of.summarize(r.event)}
                  for r in self.folded.get(order_id).history]
            self.assertEqual(py, [{k: e[k] for k in py[0]} for e in cpp], order_id)

    def test_v1_events_read_upcast(self):
        templates = collections.Counter()
        for r in self.records:
            e = r.event
            if e.schema_version != 1:
                continue
            if e.type == "PaymentAuthorized":
                self.assertEqual(e.payload["method"], "card", r.position)
            if e.type == "NotificationSent":
                templates[e.payload["template"]] += 1
            if e.type == "OrderPlaced":
                self.assertEqual(e.payload["shippingAddress"], "", r.position)
        self.assertEqual(set(templates), {"order.placed", "order.shipped", "order.delivered", "order.cancelled",
                                          "payment.declined"})
        for order_id in self.v1_ids():
            if self.listed[order_id]["paid_minor"]:
                self.assertEqual(self.listed[order_id]["payment_method"], "card", order_id)

    def test_live_feed_example_prints_one_line_per_record_and_stops_on_ctrl_c(self):
        feed = subprocess.Popen([sys.executable, os.path.join(HERE, "..", "examples", "live_feed.py"),
                                 "--brokers", self.brokers, "--topic-prefix", self.prefix, "--from-beginning"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines = []
        try:
            deadline = time.monotonic() + 60
            while len(lines) < len(self.records) and time.monotonic() < deadline:
                line = feed.stdout.readline()
                if not line:
                    break
                lines.append(line)
        finally:
            feed.send_signal(signal.SIGINT)
            _, err = feed.communicate(timeout=30)
        self.assertEqual(feed.returncode, 0, err)
        self.assertNotIn("Traceback", err)
        self.assertEqual(len(lines), len(self.records))
        v1_placed = [l for l in lines if " OrderPlaced " in l and " v1 " in l]
        self.assertEqual(len(v1_placed), V1_ORDERS)
        self.assertEqual(sum("'order.placed'" in l for l in lines),
                         sum(1 for r in self.records if r.event.type == "NotificationSent"
                             and r.event.payload["template"] == "order.placed"))


class CodecTest(unittest.TestCase):
    """The codec alone, no broker: v1 bytes from the frozen schema read with the current meaning."""

    def event(self, event_type, payload, version=1):
        return of.Event(event_id=uuid.uuid4().bytes, order_id="o-1", occurred_at_ms=1_700_000_000_123,
                        schema_version=version, type=event_type, payload=payload)

    def test_v1_notifications_get_dotted_template_names(self):
        for t in ("NotificationSent", "NotificationRequested"):
            ev = self.event(t, {"notificationId": "n", "template": "order_out_for_delivery", "recipient": "c",
                                "priority": "high"})
            got = of.decode_event(of.encode_event(ev, version=1))
            self.assertEqual(got.payload["template"], "order.out.for.delivery")
            self.assertEqual(got.schema_version, 1)
            self.assertEqual(of.upcast_to_current(got).payload["template"], "order.out.for.delivery")  # idempotent

    def test_v1_authorizations_are_card_payments_and_v2_keep_their_method(self):
        v1 = of.decode_event(of.encode_event(self.event("PaymentAuthorized", {"paymentId": "p", "amountMinor": 5}),
                                             version=1))
        self.assertEqual(v1.payload["method"], "card")
        v2 = of.decode_event(of.encode_event(self.event("PaymentAuthorized", {"paymentId": "p", "amountMinor": 5,
                                                                              "method": "paypal"}, version=2)))
        self.assertEqual(v2.payload["method"], "paypal")
        raw = of.decode_event(of.encode_event(self.event("PaymentAuthorized", {"paymentId": "p", "amountMinor": 5}),
                                              version=1), upcast=False)
        self.assertEqual(raw.payload["method"], "")
        with self.assertRaisesRegex(ValueError, "no field method"):
            of.encode_event(self.event("PaymentAuthorized", {"paymentId": "p", "amountMinor": 5, "method": "card"}),
                            version=1)

    def test_v2_template_names_are_left_alone(self):
        ev = self.event("NotificationSent", {"notificationId": "n", "template": "odd_name", "recipient": "c",
                                             "priority": "low"}, version=2)
        self.assertEqual(of.decode_event(of.encode_event(ev)).payload["template"], "odd_name")

    def test_garbage_and_newer_versions_are_refused(self):
        for data in (b"", b"garbage", b"\x00\x00"):
            with self.assertRaises(of.DecodeError):
                of.decode_event(data)
        newer = self.event("OrderDelivered", {"receivedBy": "x"}, version=3)
        with self.assertRaisesRegex(of.NewerSchemaError, "schema version 3"):
            of.decode_event(of.encode_event(newer))


if __name__ == "__main__":
    unittest.main(verbosity=2)
