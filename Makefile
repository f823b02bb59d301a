# The two commands a new user needs (see README.md):
#   make demo   set up, then run the physics demo end to end
#   make test   set up a fresh environment, then run the whole test suite (what CI runs)
# Both install the versions pinned in constraints/ (the lock). By hand, now and then:
#   make lock   resolve every dependency afresh, rewrite constraints/, run the suite on it
VENV ?= $(CURDIR)/.venv
PYTEST_ARGS ?=

.PHONY: setup demo test check lint lock

setup:
	QUANTA_VENV=$(VENV) scripts/setup.sh

demo:
	@[ -x $(VENV)/bin/quanta ] || $(MAKE) setup
	$(VENV)/bin/quanta demo $(DEMO_ARGS)

test: setup check

lock:
	QUANTA_RELOCK=1 QUANTA_VENV=$(VENV) scripts/setup.sh
	$(MAKE) check

# Run the suite in the existing environment (no reinstall).
check: lint
	OMP_WAIT_POLICY=PASSIVE $(VENV)/bin/python -m pytest -q --durations=30 $(PYTEST_ARGS)

lint:
	$(VENV)/bin/ruff check .
