"""A PostgreSQL of its own that tests and benches may stop, start and restart (the shared test server
must not be restarted under other tests): the embedded pgserver's binaries on a throwaway data directory."""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import warnings
from pathlib import Path

from xbotlib.store import migrate
from xbotlib.store.db import Database, create_database, embedded_server


class RestartablePostgres:
    """``url(dbname)`` of a migrated database; ``stop()``, ``start()`` and ``restart()`` the server."""

    def __init__(self, dbname: str = "xbot_workers"):
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        # its own directory, deleted at exit (as root, pgserver's postgres user must traverse it)
        self.home = Path(tempfile.mkdtemp(prefix="xbot-restartable-pg-"))
        atexit.register(shutil.rmtree, self.home, ignore_errors=True)
        self.server = embedded_server(self.home, cleanup_mode="delete")
        self._opts = (self.server.pgdata / "postmaster.opts").read_text().split()
        self.url = create_database(self.server.get_uri(), dbname)
        with Database.from_url(self.url, pool_max=2) as db:
            migrate.up(db)

    def _pg_ctl(self, *args: str) -> None:
        # imported here: pgserver loads slowly and only tests and benches restart a server (start-up)
        from pgserver._commands import pg_ctl
        pg_ctl(["-w", *args], pgdata=self.server.pgdata, user=self.server.system_user, timeout=60)

    def stop(self) -> None:
        """Stop the server now (connections are cut, as in a crash or a restart by an operator)."""
        self._pg_ctl("-m", "fast", "stop")

    def start(self) -> None:
        """Start it again with the options it first started with (same socket directory)."""
        opts = [o.strip('"') for o in self._opts]
        socket_dir = opts[opts.index("-k") + 1]
        self._pg_ctl("-o", '-h ""', "-o", f"-k {socket_dir}", "-l", str(self.server.pgdata / "log"), "start")

    def restart(self) -> None:
        self._pg_ctl("-m", "fast", "restart")

    def __repr__(self) -> str:
        return f"RestartablePostgres({self.url!r}, pid={os.getpid()})"
