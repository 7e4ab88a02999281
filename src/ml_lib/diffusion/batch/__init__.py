"""Batch generation: a JSONL job of requests, expanded up front, run in-process or on Ray, resumable.

``ImageGenerator.batch(job, out_dir)`` and ``ml-diffusion batch JOB.jsonl --out DIR`` are the faces;
``jobs`` expands lines into items (pure), ``manifest`` is the append-only record a re-run resumes from,
``runner`` is what both executors share, ``local`` runs here and ``ray_run`` / ``ray_actors`` on Ray.
"""

from .jobs import BatchItem, JobError, load_job, parse_job
from .manifest import ManifestBusyError
from .ray_run import RayOptions
from .runner import BatchEvent, BatchReport

__all__ = [
    "BatchEvent",
    "BatchItem",
    "BatchReport",
    "JobError",
    "ManifestBusyError",
    "RayOptions",
    "load_job",
    "parse_job",
]
