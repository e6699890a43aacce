#!/usr/bin/env python3
"""Direct HTTP baseline for make bench: POST chat completions to the upstream
over one kept-alive connection for a while; print requests/s and the mean and
median latency in ms.  Usage: bench_http.py URL API_KEY SECONDS"""
import http.client
import json
import statistics
import sys
import time
from urllib.parse import urlsplit


def main() -> None:
    url, key, seconds = urlsplit(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    conn = http.client.HTTPConnection(url.hostname, url.port)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    latencies = []
    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline:
        body = json.dumps({"model": "gpt-4o-mini",
                           "messages": [{"role": "user", "content": f"direct {i}"}]})
        start = time.perf_counter()
        conn.request("POST", url.path + "/chat/completions", body, headers)
        response = conn.getresponse()
        response.read()
        latencies.append((time.perf_counter() - start) * 1000)
        if response.status != 200:
            sys.exit(f"bench_http: HTTP {response.status}")
        i += 1
    print(f"{len(latencies) / seconds:.0f} {statistics.mean(latencies):.3f} "
          f"{statistics.median(latencies):.3f}")


if __name__ == "__main__":
    main()
