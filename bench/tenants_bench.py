#!/usr/bin/python3
"""Keyword search with many users: does one user's query cost grow with the other users' data?

    bench/tenants_bench.py [--memories 5000] [--users 20] [--queries 200] [--bin build/memfuse] [--server-arg FLAG ...]

Starts the server (build/memfuse) on a fresh data directory (loopback only; the hash embedder unless a --server-arg says
otherwise, since only the keyword path is in question and the dense path reads the user's own index), loads
N memories for a first user (rounds of 100, texts from bench/embed_texts.txt), times its keyword and hybrid
queries (random 2-5 words of the loaded vocabulary, top_k 10, one keep-alive connection), then loads N
memories for each of the other users and times the first user's queries again. Prints p50/p99 of both."""
import argparse, os, random, signal, socket, subprocess, tempfile, time

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--memories", type=int, default=5000, help="memories per user")
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "memfuse"), help="the server binary")
    ap.add_argument("--server-arg", action="append", default=[], help="extra flag for the server")
    args = ap.parse_args()
    texts = [l.strip() for l in open(os.path.join(ROOT, "bench", "embed_texts.txt")) if l.strip()]
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    d = tempfile.mkdtemp(prefix="memfuse-tenants-")
    extra = args.server_arg or ["--embedder", "hash"]
    srv = subprocess.Popen([args.bin, "serve", "--host", "127.0.0.1", "--port", str(port),
                            "--data-dir", d, "--log-level", "error", *extra],
                           stdout=subprocess.PIPE, stderr=open(os.path.join(d, "stderr"), "w"), cwd=ROOT)
    try:
        srv.stdout.readline()
        B = f"http://127.0.0.1:{port}/api/v1"
        h = requests.Session()
        agent = h.post(B + "/agents", json={"name": "tenants"}).json()["data"]["agent"]["id"]

        def load_user(i):
            uid = h.post(B + "/users", json={"name": f"tenant-{i}"}).json()["data"]["user"]["id"]
            sid = h.post(B + "/sessions", json={"user_id": uid, "agent_id": agent}).json()["data"]["session"]["id"]
            for k in range(0, args.memories, 100):
                batch = [{"role": "user", "content": f"{texts[(i * 7 + k + j) % len(texts)]} (note {k + j})"}
                         for j in range(min(100, args.memories - k))]
                r = h.post(f"{B}/sessions/{sid}/messages", json={"messages": batch})
                assert r.status_code == 201, r.text
            return uid

        words = sorted({w for t in texts for w in t.lower().split() if w.isalpha() and len(w) > 3})
        rnd = random.Random(1)
        qs = [" ".join(rnd.sample(words, rnd.randint(2, 5))) for _ in range(args.queries)]

        def timed(uid, store_type):
            lat = []
            for i, q in enumerate(qs):
                body = {"query": f"{q} {i}", "top_k": 10}  # the number keeps the answer cache out of it
                if store_type:
                    body["store_type"] = store_type
                t = time.perf_counter()
                r = h.post(f"{B}/users/{uid}/query", json=body)
                lat.append(time.perf_counter() - t)
                assert r.status_code == 200, r.text
            lat.sort()
            p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
            return f"p50 {lat[len(lat) // 2] * 1e3:6.2f} ms  p99 {p99 * 1e3:6.2f} ms"

        first = load_user(0)
        print(f"== {args.memories} memories per user, server flags: {' '.join(extra)}")
        for st in ("keyword", None):
            print(f"1 user:               {st or 'hybrid':<8} {timed(first, st)}", flush=True)
        for i in range(1, args.users):
            load_user(i)
        for st in ("keyword", None):
            print(f"{args.users} users, same user: {st or 'hybrid':<8} {timed(first, st)}", flush=True)
    finally:
        srv.send_signal(signal.SIGTERM)
        srv.wait(30)


if __name__ == "__main__":
    main()
