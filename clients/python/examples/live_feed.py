#!/usr/bin/env python3
"""A live feed of orderflow's events, one line each, read from Kafka.

    live_feed.py --brokers LIST [--topic-prefix P] [--from-beginning] [--topic T ...]

Each line: position (partition:offset), event time (UTC), order id, event
type, the schema version the record was written with, and the summary
`orderflow history` prints. Events of older schema versions are shown with
their current meaning (upcast). Stops cleanly on Ctrl-C or SIGTERM.

Run it with the venv of scripts/python-env.sh, e.g.
    $(bash scripts/python-env.sh) clients/python/examples/live_feed.py --brokers 127.0.0.1:9092
"""

import argparse
import os
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import orderflow_client as of  # noqa: E402


def main():
    ap = argparse.ArgumentParser(
        prog="live_feed.py",
        description="Print orderflow's events as they are appended, one line each: position, time, order id, "
                    "type, schema version, summary.")
    ap.add_argument("--brokers", required=True, metavar="LIST", help="Kafka bootstrap servers, host:port[,...]")
    ap.add_argument("--topic-prefix", default=os.environ.get("ORDERFLOW_TOPIC_PREFIX", ""), metavar="PREFIX",
                    help="prefix of orderflow's topic names, as orderflow's --topic-prefix "
                         "(default: $ORDERFLOW_TOPIC_PREFIX, else none)")
    ap.add_argument("--from-beginning", action="store_true",
                    help="start at offset zero (default: print only events appended from now on)")
    ap.add_argument("--topic", action="append", metavar="TOPIC",
                    help="topic to follow, without the prefix; repeatable (default: orders.events)")
    ap.add_argument("--kafka", action="append", default=[], metavar="PROP=VALUE",
                    help="librdkafka property, repeatable (e.g. --kafka security.protocol=ssl)")
    args = ap.parse_args()
    config = {}
    for kv in args.kafka:
        if "=" not in kv:
            ap.error("--kafka takes PROP=VALUE, got '%s'" % kv)
        k, v = kv.split("=", 1)
        config[k] = v
    topics = args.topic or [of.ORDERS_TOPIC]

    stop = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.append(True))

    many = len(topics) > 1
    feed = of.follow(args.brokers, topics, topic_prefix=args.topic_prefix, from_beginning=args.from_beginning,
                     config=config)
    print("live_feed: following %s on %s%s" % (", ".join(of.cluster_name(t, args.topic_prefix) for t in topics),
                                               args.brokers, " from the beginning" if args.from_beginning else ""),
          file=sys.stderr)
    try:
        for r in feed:
            if stop:
                break
            if r is None:
                continue
            where = ("%s/%s" % (r.topic, r.position)) if many else r.position
            e = r.event
            if e is None:
                line = "%-10s %-24s %-36s %-22s %-3s (undecodable: %s)" % (
                    where, of.format_time(r.timestamp_ms), r.key, r.headers.get(of.HEADER_EVENT_TYPE, "?"),
                    "v" + r.headers.get(of.HEADER_SCHEMA_VERSION, "?"), r.error)
            else:
                line = "%-10s %-24s %-36s %-22s v%-2d %s" % (where, e.time, e.order_id, e.type, e.schema_version,
                                                            of.summarize(e))
            print(line, flush=True)
    except of.TopicError as e:
        print("live_feed: %s" % e, file=sys.stderr)
        return 1
    except BrokenPipeError:  # e.g. piped into head
        sys.stderr.close()
    finally:
        feed.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
