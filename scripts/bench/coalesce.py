#!/usr/bin/env python3
"""Coalescing check: N concurrent first uses of one fresh bearer token → how many introspections?

All N connections are opened first, then every request is written in one tight loop (so they arrive
together), then every response is read. Requests are spread round-robin over the given Shroud instances.
The introspections are counted at the authorization server (`GET /stats` before and after); the memory-tier
misses from each instance's /metrics show how many requests really overlapped the first load.

Usage: coalesce.py --as-url http://127.0.0.1:P --token TOKEN --n 500 URL [URL...]   (URL = instance base URL)
Prints one JSON object.
"""
import argparse
import json
import re
import socket
import time
import urllib.request

LOOKUP = re.compile(r'^shroud_cache_lookups_total\{result="(\w+)",tier="(\w+)"\} (\d+)', re.M)


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as reply:
        return json.load(reply)


def lookups(base):
    with urllib.request.urlopen(base + "/metrics", timeout=10) as reply:
        text = reply.read().decode()
    return {f"{tier}_{result}": int(n) for result, tier, n in LOOKUP.findall(text)}


def read_status(sock):
    """Reads one HTTP/1.1 response with Content-Length; returns its status code."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the response headers")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    length = int(match.group(1)) if match else 0
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(head.split(b" ", 2)[1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--as-url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--path", default="/api/coalesce")
    parser.add_argument("bases", nargs="+")
    args = parser.parse_args()

    targets = []
    for base in args.bases:
        host, port = base.removeprefix("http://").split(":")
        request = (f"GET {args.path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                   f"Authorization: Bearer {args.token}\r\n\r\n").encode()
        targets.append(((host, int(port)), request))

    socks = []
    for i in range(args.n):
        address, request = targets[i % len(targets)]
        sock = socket.create_connection(address, timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        socks.append((sock, request))
    time.sleep(0.2)  # let every instance accept its connections

    before = get_json(args.as_url + "/stats")["introspections"]
    lookups_before = [lookups(base) for base in args.bases]
    started = time.perf_counter()
    for sock, request in socks:
        sock.send(request)
    sent = time.perf_counter() - started
    statuses = {}
    for sock, _ in socks:
        try:
            status = read_status(sock)
        except (OSError, ValueError) as e:
            status = f"error: {e.__class__.__name__}"
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        sock.close()
    elapsed = time.perf_counter() - started
    time.sleep(0.2)
    after = get_json(args.as_url + "/stats")["introspections"]
    per_instance = []
    for base, old in zip(args.bases, lookups_before):
        new = lookups(base)
        per_instance.append({"url": base, **{k: new.get(k, 0) - old.get(k, 0) for k in new}})
    print(json.dumps({
        "instances": len(args.bases),
        "requests": args.n,
        "statuses": statuses,
        "introspections": after - before,
        "send_ms": round(sent * 1000, 2),
        "elapsed_ms": round(elapsed * 1000, 2),
        "memory_misses": sum(p.get("memory_miss", 0) for p in per_instance),
        "per_instance": per_instance,
    }))


if __name__ == "__main__":
    main()
