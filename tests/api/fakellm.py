"""The fake LLM server (tests/fakes/fake_openai.py) as a test fixture: started on a free loopback port,
scripted through its /control/chat endpoint, observed through /stats/chat. See the fake's docstring for
the protocol."""
import subprocess
import sys
import time
from pathlib import Path

import requests

FAKE = Path(__file__).resolve().parents[1] / "fakes" / "fake_openai.py"

# Server flags for tests of the layers (add --llm-base-url): every add is consolidated at once and handed to
# the flush manager as one flush; a failed chat call is not retried by the client, a failed layer is by the
# flush manager after 300 ms.
LAYER_FLAGS = ("--buffer-rounds", "1", "--llm-model", "test-chat", "--llm-retries", "0",
               "--llm-timeout-ms", "2000", "--flush-retry-ms", "300")


class FakeLLM:
    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, str(FAKE), "--port", "0"], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("PORT "), f"fake LLM did not start: {line!r}"
        self.port = int(line.split()[1])
        self.url = f"http://127.0.0.1:{self.port}"

    def script(self, rules=(), mode="ok", latency_ms=0):
        r = requests.post(f"{self.url}/control/chat",
                          json={"rules": list(rules), "mode": mode, "latency_ms": latency_ms}, timeout=5)
        assert r.status_code == 200, r.text

    def reset(self):
        assert requests.post(f"{self.url}/control/reset", timeout=5).status_code == 200

    def stats(self):
        return requests.get(f"{self.url}/stats/chat", timeout=5).json()

    def calls(self, kind):
        return self.stats()["calls"].get(kind, 0)

    def stop(self):
        self.proc.kill()
        self.proc.wait(10)



def wait_for(fn, timeout=15.0, every=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
