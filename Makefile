# Mailbox Admin. `make run` to try it, `make test` to test it (see README.md).

PYTHON ?= python3
VENV ?= .venv
ADDRESS ?= 127.0.0.1:8000
PYTEST_ARGS ?=
WORKERS ?= 2
SIZE ?= 1000000
LOAD_SECONDS ?= 30

PY := $(VENV)/bin/python
PIP := $(PY) -m pip --quiet --disable-pip-version-check --no-input
# Stamps record that the requirements were installed after their last change.
RUNTIME_STAMP := $(VENV)/.installed-requirements
DEV_STAMP := $(VENV)/.installed-requirements-dev

.PHONY: run test lint clean serve bench

## run: set up (virtualenv, .env, database, first administrator), then serve on ADDRESS
run: $(RUNTIME_STAMP) .env
	@mkdir -p var
	@echo "Migrating the database"
	@$(PY) manage.py migrate --noinput --verbosity 0
	@$(PY) manage.py bootstrap_admin
	@echo
	@echo "Open http://$(ADDRESS)/ and log in (the Django admin is at http://$(ADDRESS)/admin/)."
	@echo "Mail is processed by the worker beside it (manage.py process_mailboxes)."
	@echo "Ctrl-C stops the server and the workers."
	@echo
	@scripts/serve $(PY) $(ADDRESS)

## test: install what the tests need (apt packages too when root), then ruff and pytest
test: $(DEV_STAMP)
	@scripts/test-packages
	$(VENV)/bin/ruff check .
	$(PY) -m pytest $(PYTEST_ARGS) || { status=$$?; [ $$status -ne 5 ] || echo "pytest collected no tests." >&2; exit $$status; }

## serve: production serving: gunicorn (WORKERS workers) on ADDRESS with whitenoise and the
## task worker, DEBUG off; SECRET_KEY and FIELD_ENCRYPTION_KEYS from the environment or .env
serve: $(RUNTIME_STAMP)
	@mkdir -p var
	@scripts/serve-production $(PY) $(ADDRESS) $(WORKERS)

## bench: seed a throwaway PostgreSQL with SIZE mailboxes, measure every budget, print the
## table (also in var/bench-results.txt); LOAD_SECONDS per page for the load test
bench: $(DEV_STAMP)
	@mkdir -p var
	@SIZE=$(SIZE) LOAD_SECONDS=$(LOAD_SECONDS) scripts/bench $(PY)

## lint: ruff's checks and formatting
lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

## clean: remove the virtualenv and caches (never .env or the database in var/)
clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache staticfiles
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

$(PY):
	@PYTHON=$(PYTHON) scripts/make-venv $(VENV)

$(RUNTIME_STAMP): requirements.txt | $(PY)
	@echo "Installing requirements.txt"
	@$(PIP) install -r requirements.txt
	@touch $@

$(DEV_STAMP): requirements.txt requirements-dev.txt | $(PY)
	@echo "Installing requirements-dev.txt"
	@$(PIP) install -r requirements-dev.txt
	@touch $@ $(RUNTIME_STAMP)

# Only when missing: an existing .env (and the keys in it) is never replaced.
.env: | $(RUNTIME_STAMP)
	@$(PY) scripts/write_dotenv.py $@
