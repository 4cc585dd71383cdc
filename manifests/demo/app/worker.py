"""The demo worker: polls the API every few seconds and records the answer."""
import time
import urllib.request

while True:
    try:
        with urllib.request.urlopen("http://localhost:8000/", timeout=2) as r:
            status = r.status
    except OSError as e:
        status = f"down ({e})"
    with open("/var/lib/jobs/last-check", "w") as f:
        f.write(f"{time.time():.0f} {status}\n")
    time.sleep(5)
