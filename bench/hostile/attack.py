"""The hostile side of bench/hostile.sh: opens connections that never log in and
holds them until it is stopped (SIGTERM), printing "ready" once all are set up.

Kinds (each spread over sources 127.NET.S.H, at most PER_SOURCE connections each):
  literal   IMAP `a LOGIN {40000000}` (synchronising), then silent
  literalplus  IMAP `a LOGIN {40000000+}` followed by LITERAL_MIB MiB of bytes
  data      SMTP to the MX port: EHLO, MAIL, RCPT to a local user, DATA and DATA_MIB MiB
            of message that never ends
  slow      a command line trickled one byte every SLOW_EVERY seconds (IMAP, POP3 and
            SMTP in turn)
"""

import asyncio, os, signal, sys, time

host_imap, host_smtp, net = sys.argv[1], sys.argv[2], sys.argv[3]
counts = dict(kv.split("=") for kv in sys.argv[4].split(","))
counts = {k: int(v) for k, v in counts.items()}
PER_SOURCE = int(os.environ.get("PER_SOURCE", "40"))
LITERAL_MIB = int(os.environ.get("LITERAL_MIB", "2"))
DATA_MIB = int(os.environ.get("DATA_MIB", "2"))
SLOW_EVERY = float(os.environ.get("SLOW_EVERY", "5"))
RCPT = os.environ.get("RCPT", "alice@example.test")
IMAP, POP3, SMTP = 10143, 10110, 10025

stats = {"opened": 0, "refused": 0, "set_up": 0, "closed_by_server": 0, "bytes_sent": 0}
writers = []
next_source = [0]


def source():
    n = next_source[0]
    next_source[0] += 1
    return f"127.{net}.{100 + n // PER_SOURCE}.{1 + n % PER_SOURCE}"


async def open_from(host, port):
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, local_addr=(source(), 0)), 20)
    except (OSError, asyncio.TimeoutError):
        stats["refused"] += 1
        return None, None
    writers.append(writer)
    stats["opened"] += 1
    return reader, writer


async def send(writer, data):
    writer.write(data)
    await writer.drain()
    stats["bytes_sent"] += len(data)


async def literal(plus):
    reader, writer = await open_from(host_imap, IMAP)
    if writer is None:
        return
    try:
        await reader.readline()
        if plus:
            await send(writer, b"a LOGIN {40000000+}\r\n")
            chunk = b"x" * 65536
            for _ in range(LITERAL_MIB * 16):
                await send(writer, chunk)
        else:
            await send(writer, b"a LOGIN {40000000}\r\n")
            await reader.readline()
    except (OSError, asyncio.IncompleteReadError):
        pass
    stats["set_up"] += 1
    try:
        await reader.read()  # until the server closes it
    except (OSError, asyncio.IncompleteReadError):
        pass
    stats["closed_by_server"] += 1


async def data():
    reader, writer = await open_from(host_smtp, SMTP)
    if writer is None:
        return
    try:
        await reader.readline()
        await send(writer, b"EHLO attacker.example\r\n")
        while not (await reader.readline()).startswith(b"250 "):
            pass
        for command in (b"MAIL FROM:<a@attacker.example>\r\n", f"RCPT TO:<{RCPT}>\r\n".encode(), b"DATA\r\n"):
            await send(writer, command)
            await reader.readline()
        await send(writer, b"Subject: never ends\r\n\r\n")
        line = b"y" * 998 + b"\r\n"
        chunk = line * 64
        for _ in range(DATA_MIB * 1024 * 1024 // len(chunk)):
            await send(writer, chunk)
    except (OSError, asyncio.IncompleteReadError):
        stats["closed_by_server"] += 1
    stats["set_up"] += 1
    try:
        await reader.read()
    except (OSError, asyncio.IncompleteReadError):
        pass


async def slow(n):
    host, port = [(host_imap, IMAP), (host_imap, POP3), (host_smtp, SMTP)][n % 3]
    reader, writer = await open_from(host, port)
    if writer is None:
        return
    first = True
    try:
        await reader.readline()
        for byte in b"a LOGIN somebody " + b"z" * 1000:
            await send(writer, bytes([byte]))
            if first:
                stats["set_up"] += 1
                first = False
            await asyncio.sleep(SLOW_EVERY)
    except (OSError, asyncio.IncompleteReadError):
        stats["closed_by_server"] += 1
    if first:
        stats["set_up"] += 1


async def main():
    tasks = []
    # Set up at a bounded pace: a burst of connects is the accept queue's problem, not
    # what this measures.
    kinds = ([lambda: literal(False)] * counts.get("literal", 0)
             + [lambda: literal(True)] * counts.get("literalplus", 0)
             + [data] * counts.get("data", 0))
    for i, kind in enumerate(kinds):
        tasks.append(asyncio.create_task(kind()))
        if i % 50 == 49:
            await asyncio.sleep(0.05)
    for n in range(counts.get("slow", 0)):
        tasks.append(asyncio.create_task(slow(n)))
        if n % 50 == 49:
            await asyncio.sleep(0.05)
    # Ready once everything was sent (the data and literals of every connection).
    deadline = time.monotonic() + 120
    target = sum(counts.values())
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        if stats["set_up"] + stats["refused"] >= target:
            break
    await asyncio.sleep(3)
    print("ready", " ".join(f"{k}={v}" for k, v in stats.items()), flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    print("stopped", " ".join(f"{k}={v}" for k, v in stats.items()), flush=True)
    for w in writers:
        w.close()


asyncio.run(main())
