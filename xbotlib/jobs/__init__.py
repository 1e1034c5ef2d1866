"""The four jobs — plan, post, collect, learn — each a ``tick(ctx) -> JobResult``.

``context`` holds ``JobContext`` (the thin shell every job needs: settings, database, clock, X
client, content generator, random generator) and builds it from settings; ``runner.run_job`` runs
one tick and records it in ``job_runs``. ``daemon`` and ``schedules`` drive the ticks in real time;
``campaign`` drives them on a simulated clock.
"""
