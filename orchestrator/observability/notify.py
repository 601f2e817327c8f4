"""Optional webhook notifications (run finished, regression found, device quarantined).

``notify`` posts ``{"event", "payload", "sent_at"}`` as JSON to ``BENCHFARM_WEBHOOK_URL``
with a short timeout and never raises: a slow or broken receiver must not fail a run,
a PR job or a quarantine. The URL may carry a secret, so it is never logged.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from typing import Any

import httpx

log = logging.getLogger("benchfarm.notify")
EVENTS = ("run_finished", "regression_found", "device_quarantined")
TIMEOUT_S = 5.0


def notify(event: str, payload: dict[str, Any], url: str | None = None, timeout_s: float = TIMEOUT_S) -> bool:
    """True when the receiver answered 2xx; False when unset, unknown event, or any failure."""
    url = url or os.environ.get("BENCHFARM_WEBHOOK_URL", "")
    if not url:
        return False
    if event not in EVENTS:
        log.warning("webhook: unknown event %r not sent (known: %s)", event, ", ".join(EVENTS))
        return False
    body = {"event": event, "payload": payload, "sent_at": datetime.now(UTC).isoformat()}
    try:
        httpx.post(url, json=body, timeout=timeout_s).raise_for_status()
    except Exception as exc:  # never raise: notifications are best effort by design
        log.warning("webhook %s not delivered: %s", event, type(exc).__name__)
        return False
    return True
