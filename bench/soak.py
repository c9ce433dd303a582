#!/usr/bin/env python3
"""Soak (issue 8): a million mixed requests against one server on loopback, watching its resources.

    python3 bench/soak.py [--bin build/memfuse] [--requests 1000000] [--max-seconds 1500] [--out FILE]

Starts the server on 127.0.0.1 (a fresh temporary data dir; embedder `hash` unless --embedder says
otherwise), seeds 32 users with a session of 20 messages and 5 knowledge items each, then drives it with wrk
and bench/soak.lua (adds, updates, deletes, lists, queries, reads, gets, health: the mix is in the Lua file;
adds and deletes balance, so the data set keeps its size) in ten segments of about a tenth of the requests
each (a 5 s calibration segment first sets their length and warms the server up). The rounds a segment
added and had not deleted yet when it ended are deleted before the next one. At the end every seeded
message must still read back. Every 2 s it samples the server's RSS, open file descriptors (/proc/PID/fd) and threads; fds and
threads at the end (3 s after the last request) are compared with their values right after calibration. At the end the server is stopped with
SIGTERM and must exit 0.

Prints one JSON report (also written to --out): totals, each segment's latency percentiles, the first
against the last segment (the first and last ~10%), and the resource samples' start / max / end.
Exit status 1 when any answer was not 2xx, wrk saw socket errors or timeouts, the server died, or its
fds or threads grew by more than a few. Bounded by --max-seconds (it stops early and says so)."""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())["data"]


def proc_sample(pid):
    st = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            st[k] = v.strip()
    return {"t": time.monotonic(), "rss_kb": int(st["VmRSS"].split()[0]), "threads": int(st["Threads"]),
            "fds": len(os.listdir(f"/proc/{pid}/fd"))}


class Sampler(threading.Thread):
    def __init__(self, pid, every=2.0):
        super().__init__(daemon=True)
        self.pid, self.every, self.samples, self.stop = pid, every, [], threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                self.samples.append(proc_sample(self.pid))
            except (OSError, ValueError, KeyError):
                return
            self.stop.wait(self.every)


def seed(base, n_users=32, n_msgs=20):
    words = "hiking lake geneva weather coffee violin orchestra birthday cake train tokyo garden recipe".split()
    agent = call(base, "POST", "/agents", {"name": "soak-agent"})["agent"]["id"]
    lines = []
    for u in range(n_users):
        uid = call(base, "POST", "/users", {"name": f"soak-user-{u}"})["user"]["id"]
        sid = call(base, "POST", "/sessions", {"user_id": uid, "agent_id": agent})["session"]["id"]
        mids = []
        for m in range(0, n_msgs, 4):
            batch = [{"role": "user", "content": f"seed {u} {m + j} " + " ".join(words[(m + j + k) % len(words)]
                                                                                  for k in range(6))} for j in range(4)]
            mids += call(base, "POST", f"/sessions/{sid}/messages", {"messages": batch})["message_ids"]
        call(base, "POST", f"/users/{uid}/knowledge", {"knowledge": [f"knowledge {u} {k} {words[k]}" for k in range(5)]})
        lines.append(f"{uid} {sid} {','.join(mids)}")
    return lines


def delete_left(base, lines):
    """Delete the rounds a wrk run added and still held ("SOAK_LEFT sid id,id" lines); returns how many."""
    for line in lines:
        sid, ids = line.split()
        call(base, "DELETE", f"/sessions/{sid}/messages", {"message_ids": ids.split(",")})
    return len(lines)


def wrk(port, seconds, ids_file, seed_no, connections):
    # one connection per wrk thread: soak.lua pairs each answer with its request
    cmd = ["wrk", f"-t{connections}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s",
           os.path.join(REPO, "bench", "soak.lua"), f"http://127.0.0.1:{port}", "--", ids_file, str(seed_no)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120)
    m = re.search(r"^SOAK_JSON (.*)$", p.stdout, re.M)
    if p.returncode != 0 or not m:
        raise RuntimeError(f"wrk failed (rc={p.returncode}):\n{p.stdout}\n{p.stderr}")
    out = json.loads(m.group(1))
    out["left"] = re.findall(r"^SOAK_LEFT (\S+ \S+)$", p.stdout, re.M)
    return out


def summarize(samples, key):
    vals = [s[key] for s in samples]
    return {"start": vals[0], "max": max(vals), "end": vals[-1]} if vals else {}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(REPO, "build", "memfuse"))
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--segments", type=int, default=10)
    ap.add_argument("--max-seconds", type=float, default=1500)
    ap.add_argument("--connections", type=int, default=8, help="wrk connections, one wrk thread each")
    ap.add_argument("--embedder", default="hash")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("soak: wrk is not installed (apt-get install wrk)")

    tmp = tempfile.mkdtemp(prefix="memfuse-soak.")
    port = free_port()
    log = open(os.path.join(tmp, "server.err"), "wb")
    srv = subprocess.Popen([args.bin, "serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir",
                            os.path.join(tmp, "data"), "--log-level", "warn", "--embedder", args.embedder],
                           stdout=subprocess.DEVNULL, stderr=log, cwd=REPO)
    base = f"http://127.0.0.1:{port}/api/v1"
    report = {"requests_target": args.requests, "embedder": args.embedder, "connections": args.connections,
              "machine_cores": os.cpu_count(), "segments": []}
    ok = True
    try:
        for _ in range(200):
            try:
                call(base, "GET", "/health")
                break
            except OSError:
                time.sleep(0.05)
        ids_file = os.path.join(tmp, "ids.txt")
        with open(ids_file, "w") as f:
            f.write("\n".join(seed(base)) + "\n")
        sampler = Sampler(srv.pid)
        sampler.start()
        t_start = time.monotonic()
        calib = wrk(port, 5, ids_file, 0, args.connections)
        deleted_left = delete_left(base, calib.pop("left"))
        report["calibration"] = calib
        done = calib["requests"]
        rate = calib["requests"] / (calib["duration_us"] / 1e6)
        seg_s = max(3, round((args.requests - done) / args.segments / rate))
        report["segment_seconds"] = seg_s
        time.sleep(3)  # let the calibration's keep-alive connections close
        base_sample = proc_sample(srv.pid)  # after the calibration warmed everything up (read connections...)
        report["baseline_after_calibration"] = base_sample
        for i in range(args.segments):
            if done >= args.requests:
                break
            if time.monotonic() - t_start + seg_s > args.max_seconds:
                report["stopped_early"] = f"after {i} segments ({done} requests): the time bound"
                break
            seg = wrk(port, seg_s, ids_file, i + 1, args.connections)
            deleted_left += delete_left(base, seg.pop("left"))
            seg["index"] = i + 1
            report["segments"].append(seg)
            done += seg["requests"]
            print(f"soak: segment {i + 1}: {seg['requests']} requests, p50 {seg['latency_us']['p50']} us, "
                  f"p99 {seg['latency_us']['p99']} us, non-2xx {seg['non2xx']}, rss "
                  f"{sampler.samples[-1]['rss_kb'] if sampler.samples else '?'} kB", file=sys.stderr, flush=True)
            if srv.poll() is not None:
                break
        report["seconds"] = round(time.monotonic() - t_start, 1)
        time.sleep(3)  # let idle keep-alive connections close
        sampler.stop.set()
        sampler.join(5)
        report["requests"] = done
        segs = [calib] + report["segments"]
        report["non2xx"] = {}
        for s in segs:
            for code, n in s["non2xx"].items():
                report["non2xx"][code] = report["non2xx"].get(code, 0) + n
        report["socket_errors"] = {k: sum(s["errors"][k] for s in segs) for k in calib["errors"]}
        if report["segments"]:
            first, last = report["segments"][0], report["segments"][-1]
            report["first_vs_last"] = {"first": first["latency_us"], "last": last["latency_us"],
                                       "first_rps": round(first["requests"] / (first["duration_us"] / 1e6)),
                                       "last_rps": round(last["requests"] / (last["duration_us"] / 1e6))}
        sm = sampler.samples
        report["rss_kb"] = summarize(sm, "rss_kb")
        report["fds"] = summarize(sm, "fds")
        report["threads"] = summarize(sm, "threads")
        report["samples"] = len(sm)
        report["rounds_deleted_between_runs"] = deleted_left
        missing_seeds = []
        with open(ids_file) as f:
            for line in f:
                uid, sid, mids = line.split()
                try:
                    call(base, "POST", f"/sessions/{sid}/messages/read", {"message_ids": mids.split(",")})
                except OSError as e:
                    missing_seeds.append(f"{sid}: {e!r}")
        try:
            st = call(base, "GET", "/chunks/stats")
            report["stored_chunks"] = st["total_chunks"]
            report["vectors"] = st["by_store"].get("vector")
        except OSError as e:
            report["stats_error"] = repr(e)
        problems = []
        if srv.poll() is not None:
            problems.append(f"the server died (rc={srv.returncode})")
        if report["non2xx"]:
            problems.append(f"non-2xx answers: {report['non2xx']}")
        if any(report["socket_errors"].values()):
            problems.append(f"socket errors: {report['socket_errors']}")
        end = proc_sample(srv.pid) if srv.poll() is None else None
        report["end_sample"] = end
        if end and end["fds"] > base_sample["fds"] + 4:
            problems.append(f"fds grew from {base_sample['fds']} to {end['fds']}")
        if end and end["threads"] > base_sample["threads"] + 2:
            problems.append(f"threads grew from {base_sample['threads']} to {end['threads']}")
        if missing_seeds:
            problems.append(f"seeded messages do not read back: {missing_seeds[:3]}")
        if done < args.requests:
            problems.append(f"only {done} of {args.requests} requests within {args.max_seconds:.0f} s")
        report["problems"] = problems
        ok = not problems
    finally:
        if srv.poll() is None:
            srv.send_signal(signal.SIGTERM)
            try:
                rc = srv.wait(60)
            except subprocess.TimeoutExpired:
                srv.kill()
                rc = "killed after 60 s"
            report["exit_code"] = rc
            ok = ok and rc == 0
        log.close()
        if ok:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            report["kept"] = tmp
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
