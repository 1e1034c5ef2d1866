"""Worlds: where posts went and outcomes came from — 'live' (the real X) or 'sandbox' (anything else)."""
from __future__ import annotations
