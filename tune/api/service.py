"""The tune API's resources as one object, for callers in the same process: ``quanta tune
run`` and ``quanta tune jobs`` (``tune.cli``), the tests and the benchmarks create files
and jobs and read them back the way the routes do, without HTTP.

Each resource keeps its own module and class (``files``, ``jobs``, ``graders``); the
routes (``tune.api.app``) use those directly.
"""

from __future__ import annotations

from tune.api.files import FilesService
from tune.api.graders import GradersService
from tune.api.jobs import JobsService


class TuneService(FilesService, JobsService, GradersService):
    """Files, fine-tuning jobs and graders over one registry (``TuneService(registry)``)."""
