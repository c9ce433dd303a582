#!/usr/bin/python3
"""Evidence-recall benchmark on a LoCoMo-format file, through the HTTP API (issue 4).

    bench/recall/recall.py FILE [--url URL | --bin build/memfuse] [--k 1,5,10,20] [--store-type hybrid|vector|keyword]
                                [--json OUT] [--server-arg ARG ...]

FILE: a JSON list of samples, each {"conversation": {"speaker_a", "speaker_b", "session_N": [turns],
"session_N_date_time", ...}, "qa": [{"question", "evidence": [dia_id...], "category"}]}, a turn being
{"speaker", "dia_id", "text"}. Each sample gets its own user (and one agent shared by all); each LoCoMo
session its own MemFuse session, in session order; turns are added two per add call, as
"<speaker>: <text>", role "user" for speaker_a and "assistant" for speaker_b. Every question is asked with
POST /users/{uid}/query scoped to its user (top_k = the largest k). A hit is a returned message whose id
maps back to an evidence dia_id. Reports per category and overall: recall@k (the share of evidence turns
in the top k), all@k (the share of questions with all their evidence in the top k), MRR (of the first
evidence hit) and query latency percentiles. Without --url it starts the binary on a fresh data directory
and waits until every message has its vector before asking."""
import argparse, json, os, re, signal, socket, subprocess, sys, tempfile, time

import requests


def session_keys(conv):
    keys = [k for k in conv if re.fullmatch(r"session_\d+", k) and isinstance(conv[k], list)]
    return sorted(keys, key=lambda k: int(k.split("_")[1]))


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else 0.0


def start_server(binary, extra):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    d = tempfile.mkdtemp(prefix="memfuse-recall-")
    proc = subprocess.Popen([binary, "serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", d,
                             "--log-level", "warn", *extra], stdout=subprocess.PIPE,
                            stderr=open(os.path.join(d, "stderr"), "w"))
    proc.stdout.readline()
    return proc, f"http://127.0.0.1:{port}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file")
    ap.add_argument("--url")
    ap.add_argument("--bin", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "memfuse"))
    ap.add_argument("--k", default="1,5,10,20")
    ap.add_argument("--store-type", default="hybrid", choices=["hybrid", "vector", "keyword"])
    ap.add_argument("--json", help="also write the report as JSON here")
    ap.add_argument("--server-arg", action="append", default=[], help="extra flag for the started server")
    ap.add_argument("--wait-vectors", type=float, default=600, help="seconds to wait for embeddings")
    args = ap.parse_args()
    ks = sorted({int(x) for x in args.k.split(",")})
    samples = json.load(open(args.file))
    if isinstance(samples, dict):
        samples = [samples]

    proc = None
    if args.url:
        base = args.url.rstrip("/")
    else:
        proc, base = start_server(os.path.abspath(args.bin), args.server_arg)
    B = base + "/api/v1"
    h = requests.Session()
    try:
        tag = str(int(time.time() * 1000))
        agent = h.post(B + "/agents", json={"name": f"recall-{tag}"}).json()["data"]["agent"]["id"]
        users, id2dia, n_msgs = [], {}, 0
        t0 = time.monotonic()
        for si, sample in enumerate(samples):
            conv = sample["conversation"]
            a_name, b_name = conv.get("speaker_a"), conv.get("speaker_b")
            uid = h.post(B + "/users", json={"name": f"recall-{tag}-{si}"}).json()["data"]["user"]["id"]
            users.append(uid)
            for key in session_keys(conv):
                sid = h.post(B + "/sessions", json={"user_id": uid, "agent_id": agent, "name": key}).json()["data"]["session"]["id"]
                turns = [t for t in conv[key] if isinstance(t, dict) and t.get("text")]
                for i in range(0, len(turns), 2):
                    pair = turns[i:i + 2]
                    msgs = [{"role": "user" if t.get("speaker") == a_name else "assistant",
                             "content": f"{t.get('speaker')}: {t['text']}"} for t in pair]
                    r = h.post(f"{B}/sessions/{sid}/messages", json={"messages": msgs})
                    if r.status_code != 201:
                        sys.exit(f"add failed: {r.status_code} {r.text[:200]}")
                    for t, mid in zip(pair, r.json()["data"]["message_ids"]):
                        id2dia[mid] = (si, t.get("dia_id"))
                    n_msgs += len(pair)
        t_ingest = time.monotonic() - t0
        if args.store_type != "keyword":
            deadline = time.monotonic() + args.wait_vectors
            while time.monotonic() < deadline:
                done = sum(h.get(B + "/chunks/stats", params={"user_id": u}).json()["data"]["by_store"]["vector"] for u in users)
                if done >= n_msgs:
                    break
                time.sleep(0.2)
        t_ready = time.monotonic() - t0

        stats, lat = {}, []
        kmax = max(ks)
        for si, sample in enumerate(samples):
            for qa in sample.get("qa", []):
                ev = [e for e in qa.get("evidence") or [] if isinstance(e, str)]
                if not ev or not qa.get("question"):
                    continue
                body = {"query": qa["question"], "top_k": kmax}
                if args.store_type != "hybrid":
                    body["store_type"] = args.store_type
                t = time.perf_counter()
                r = h.post(f"{B}/users/{users[si]}/query", json=body)
                lat.append(time.perf_counter() - t)
                ranked = [id2dia.get(x["id"], (None, None))[1] for x in r.json()["data"]["results"]]
                evs = set(ev)
                cat = str(qa.get("category", "none"))
                for c in (cat, "overall"):
                    st = stats.setdefault(c, {"questions": 0, "rr": 0.0, **{f"recall@{k}": 0.0 for k in ks},
                                              **{f"all@{k}": 0 for k in ks}})
                    st["questions"] += 1
                    for k in ks:
                        found = evs & set(ranked[:k])
                        st[f"recall@{k}"] += len(found) / len(evs)
                        st[f"all@{k}"] += found == evs
                    first = next((i for i, d in enumerate(ranked) if d in evs), None)
                    st["rr"] += 1 / (first + 1) if first is not None else 0
        report = {"file": args.file, "store_type": args.store_type, "samples": len(samples), "messages": n_msgs,
                  "ingest_s": round(t_ingest, 2), "ready_s": round(t_ready, 2), "categories": {}}
        for c, st in sorted(stats.items(), key=lambda kv: (kv[0] == "overall", kv[0])):
            n = st["questions"]
            report["categories"][c] = {"questions": n, "mrr": round(st["rr"] / n, 4),
                                       **{f"recall@{k}": round(st[f"recall@{k}"] / n, 4) for k in ks},
                                       **{f"all@{k}": round(st[f"all@{k}"] / n, 4) for k in ks}}
        ms = [x * 1e3 for x in lat]
        report["query_ms"] = {"p50": round(pct(ms, 50), 2), "p90": round(pct(ms, 90), 2), "p99": round(pct(ms, 99), 2)}
        print(f"{len(samples)} samples, {n_msgs} messages ingested in {t_ingest:.1f} s (ready after {t_ready:.1f} s), "
              f"store_type {args.store_type}")
        cols = [f"recall@{k}" for k in ks] + [f"all@{k}" for k in ks] + ["mrr"]
        print(f"{'category':<10} {'n':>5} " + " ".join(f"{c:>9}" for c in cols))
        for c, v in report["categories"].items():
            print(f"{c:<10} {v['questions']:>5} " + " ".join(f"{v[x]:>9.3f}" for x in cols))
        print(f"query latency: p50 {report['query_ms']['p50']} ms, p90 {report['query_ms']['p90']} ms, p99 {report['query_ms']['p99']} ms")
        if args.json:
            json.dump(report, open(args.json, "w"), indent=1)
    finally:
        if proc:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)


if __name__ == "__main__":
    main()
