"""The OpenAI spend ledger (table ``llm_ledger``): reservations, settled costs, refunds and the
daily budget's circuit, per account. The client in ``xbotlib.clients.llm`` decides; this module
reads and writes."""
from __future__ import annotations
