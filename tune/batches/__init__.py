"""OpenAI's Batch API, run: a batch's input lines (``lines``) answered through Quanta's
serve by a batch runner (``runner.BatchWorker``)."""
