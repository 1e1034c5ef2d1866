"""Test and benchmark support: throwaway databases on a real PostgreSQL.

``TestPostgres`` starts (or joins) one PostgreSQL — the embedded pgserver, or the server named by
XBOT_TEST_DATABASE_URL — migrates a template database once, and hands out fresh copies of it
(``CREATE DATABASE … TEMPLATE``), so every test starts from the real schema in ~0.1 s.
"""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import psycopg

from xbotlib.store import migrate
from xbotlib.store.db import Database, create_database, drop_database, embedded_server


class TestPostgres:
    __test__ = False  # not a pytest class

    def __init__(self, base_url: str | None = None, home: Path | None = None):
        base_url = base_url or os.environ.get("XBOT_TEST_DATABASE_URL")
        self._server = None
        self.external = bool(base_url)
        if not base_url:
            if os.geteuid() == 0:
                # As root, pgserver runs postgres as the user 'pgserver', which must traverse every
                # parent of the data directory. pytest resets its basetemp root (/tmp/pytest-of-root)
                # to 0700 whenever another session starts, which breaks a server started below it;
                # so the server gets a directory of its own, deleted when the session ends.
                home = Path(tempfile.mkdtemp(prefix="xbot-test-pg-"))
                # registered first, so it runs after pgserver's own exit handler has stopped the server
                atexit.register(shutil.rmtree, home, ignore_errors=True)
                self._server = embedded_server(home, cleanup_mode="delete")
            else:
                home = home or Path(tempfile.gettempdir()) / "xbot-test-pg"
                self._server = embedded_server(home)
            base_url = self._server.get_uri()
        self.base_url = base_url
        self.template = f"xbot_tpl_{uuid.uuid4().hex[:8]}"
        self._created: list[str] = []
        template_url = create_database(base_url, self.template)
        self._created.append(self.template)
        with Database.from_url(template_url, pool_max=2) as db:
            migrate.up(db)

    @property
    def private_pgdata(self) -> Path | None:
        """The data directory of the server this object started for itself alone (as root: one per object), whose
        processes do nothing but what its databases are asked; None for a shared or an external server."""
        return self._server.pgdata if self._server is not None and os.geteuid() == 0 else None

    def empty_database(self) -> str:
        """A new, unmigrated database; returns its URL."""
        name = f"xbot_t_{uuid.uuid4().hex[:10]}"
        url = create_database(self.base_url, name)
        self._created.append(name)
        return url

    def fresh_database(self) -> str:
        """A new database with every migration applied; returns its URL."""
        name = f"xbot_t_{uuid.uuid4().hex[:10]}"
        url = create_database(self.base_url, name, template=self.template)
        self._created.append(name)
        return url

    def drop_all(self) -> None:
        for name in reversed(self._created):
            try:
                drop_database(self.base_url, name)
            except psycopg.Error:
                pass
        self._created.clear()
