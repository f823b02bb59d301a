"""Quanta's web console: a browser client of the tune and serve HTTP APIs."""
