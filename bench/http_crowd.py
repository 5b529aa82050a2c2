#!/usr/bin/env python3
"""Holds a crowd of connections open against an HTTP server, for http_bench.sh.

    http_crowd.py HOST:PORT IDLE STREAMS STREAM_PATH

Opens IDLE TCP connections that never send a byte and STREAMS connections
that GET STREAM_PATH (a server-sent-events stream) and read it, prints
"ready IDLE_OPEN STREAMS_OPEN" once all are open, then holds them until
killed; every 5 s it prints how many are still open.
"""
import asyncio
import resource
import sys


async def main():
    address, idle_n, streams_n, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    host, port = address.rsplit(":", 1)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    idle, streams = [], []
    open_streams = [0]

    async def stream():
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {address}\r\n\r\n".encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        if b" 200 " not in head.split(b"\r\n", 1)[0]:
            raise RuntimeError(f"stream refused: {head[:80]!r}")
        open_streams[0] += 1
        streams.append(writer)
        try:
            while await reader.read(4096):
                pass
        finally:
            open_streams[0] -= 1

    for i in range(idle_n):
        _, writer = await asyncio.open_connection(host, int(port))
        idle.append(writer)
    tasks = [asyncio.create_task(stream()) for _ in range(streams_n)]
    while open_streams[0] < streams_n:
        done = [t for t in tasks if t.done() and t.exception()]
        if done:
            raise done[0].exception()
        await asyncio.sleep(0.05)
    print(f"ready {len(idle)} {open_streams[0]}", flush=True)
    while True:
        await asyncio.sleep(5)
        alive = sum(1 for w in idle if not w.is_closing() and not w.transport.is_closing())
        print(f"open {alive} {open_streams[0]}", flush=True)


asyncio.run(main())
