"""OpenAI's Evals over Quanta's models: an eval's testing criteria (``criteria``, the same
graders reinforcement fine-tuning trains with), its runs' items (``data_sources``), the
samples asked of serve (``sampling``) and the worker that grades runs outside the API's
process (``runner``: ``quanta tune runner``).

The API (``tune.api.evals``) validates requests with the parsers here and queues runs in
the registry; the worker claims them. The two meet only in the registry and in these
modules: the worker imports nothing of the API.
"""

from tune.evals.errors import EvalRequestError
from tune.evals.runner import EvalWorker

__all__ = ["EvalRequestError", "EvalWorker"]
