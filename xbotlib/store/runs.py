"""Runs of jobs and notebooks (tables ``job_runs`` and ``notebook_runs``): every tick and every report
leaves a record, the failed ones included."""
from __future__ import annotations
