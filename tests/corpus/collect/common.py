"""Shared helpers for the Python capture scripts (connection data, step markers)."""
import os
import time

PORT = int(os.environ.get("PORT", "55432"))
HOST = "127.0.0.1"
USER, PASSWORD, DB = "agent_wasser", "wasser", "crm"
MARKERS = os.environ["MARKERS"]


def step(client, what):
    """Record that CLIENT starts WHAT; the sleeps keep ms-resolution log stamps apart."""
    time.sleep(0.03)
    with open(MARKERS, "a") as f:
        f.write(f"{time.time():.6f}\t{client}\t{what}\n")
    time.sleep(0.03)
