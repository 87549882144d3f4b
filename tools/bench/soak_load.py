#!/usr/bin/python3
"""Steady load through mitmd for the soak benchmark: W threads, each a requests.Session (kept
alive) that GETs small bodies, a 1 MiB stream every 20th request, and starts a new connection
every 50th. Prints the number of requests done and failed at the end."""
import argparse
import threading
import time

import requests


def worker(args, stop, counts, lock):
    done = failed = 0
    session = None
    i = 0
    while not stop.is_set():
        if session is None or i % 50 == 0:
            if session is not None:
                session.close()
            session = requests.Session()
            session.proxies = {"https": args.proxy, "http": args.proxy}
        path = "/stream/1048576" if i % 20 == 19 else "/bytes"
        try:
            # verify per request: a session-level one loses to REQUESTS_CA_BUNDLE.
            r = session.get(args.origin + path, timeout=30, verify=args.cacert)
            r.content
            if r.status_code == 200:
                done += 1
            else:
                failed += 1
        except requests.RequestException:
            failed += 1
            session = None
        i += 1
    if session is not None:
        session.close()
    with lock:
        counts[0] += done
        counts[1] += failed


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--proxy", required=True)
    p.add_argument("--cacert", required=True)
    p.add_argument("--origin", required=True, help="https://HOST:PORT (no path)")
    p.add_argument("--seconds", type=float, default=600)
    p.add_argument("--workers", type=int, default=8)
    args = p.parse_args()
    stop = threading.Event()
    counts = [0, 0]
    lock = threading.Lock()
    threads = [threading.Thread(target=worker, args=(args, stop, counts, lock)) for _ in range(args.workers)]
    for t in threads:
        t.start()
    time.sleep(args.seconds)
    stop.set()
    for t in threads:
        t.join()
    print(f"requests {counts[0]} failed {counts[1]}")


if __name__ == "__main__":
    main()
