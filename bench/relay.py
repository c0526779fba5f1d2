#!/usr/bin/python3
"""A relay that puts a network distance between a client and a server.

    relay.py --to HOST:PORT | --to-unix PATH  [--listen-unix PATH] --delay-ms MS

Listens on 127.0.0.1 (a free port, printed on stdout as the first line)
or on a Unix socket (its path printed), and forwards each connection to
the server, delaying every byte by MS milliseconds in each direction: a
round trip costs 2 * MS.  Bytes keep their order and nothing is
serialized, so a client that pipelines requests keeps doing so.  A new
connection costs one round trip before its first byte goes through, as a
TCP handshake does at that distance.

The bench runs every remote target, and sshfs, through one of these
(LATENCY_MS in bench/run.sh).
"""

import argparse
import asyncio
import collections
import sys
import time


async def pump(reader, writer, delay):
    """Copy reader to writer, each chunk `delay` seconds after it came."""
    queue = collections.deque()
    arrived = asyncio.Event()
    done = False

    async def deliver():
        while True:
            while not queue:
                if done:
                    return
                arrived.clear()
                await arrived.wait()
            due, data = queue.popleft()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    sender = asyncio.ensure_future(deliver())
    try:
        while True:
            data = await reader.read(1 << 16)
            queue.append((time.monotonic() + delay, data or None))
            arrived.set()
            if not data:
                break
    except (ConnectionError, OSError):
        queue.append((time.monotonic() + delay, None))
        arrived.set()
    done = True
    arrived.set()
    try:
        await sender
    except (ConnectionError, OSError):
        pass


async def serve(args):
    delay = args.delay_ms / 1000.0

    async def handle(creader, cwriter):
        await asyncio.sleep(2 * delay)  # the handshake
        try:
            if args.to_unix:
                sreader, swriter = await asyncio.open_unix_connection(args.to_unix)
            else:
                host, port = args.to.rsplit(":", 1)
                sreader, swriter = await asyncio.open_connection(host, int(port))
        except OSError:
            cwriter.close()
            return
        await asyncio.gather(pump(creader, swriter, delay),
                             pump(sreader, cwriter, delay))
        for w in (cwriter, swriter):
            try:
                w.close()
            except OSError:
                pass

    if args.listen_unix:
        server = await asyncio.start_unix_server(handle, args.listen_unix)
        print(args.listen_unix, flush=True)
    else:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    to = ap.add_mutually_exclusive_group(required=True)
    to.add_argument("--to", help="HOST:PORT of the server")
    to.add_argument("--to-unix", help="the server's Unix socket")
    ap.add_argument("--listen-unix", help="listen here, not on 127.0.0.1")
    ap.add_argument("--delay-ms", type=float, required=True,
                    help="one-way delay, milliseconds")
    args = ap.parse_args()
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
