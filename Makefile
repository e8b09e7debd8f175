# The two commands: `make book` (build the book) and `make test` (run the tests). Both set up .venv
# with the exact locked versions (requirements.lock) first if it is missing or out of date.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: book test env serve bench clean lock

book: $(STAMP)
	$(PY) -m allocsim build

test: $(STAMP)
	$(PY) -m pytest

env: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (found %s)" % sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	@touch $@

# Serve the rendered book on http://127.0.0.1:8000/ (works offline: the book serves its own vega).
serve: book
	$(PY) -m http.server --directory _build/html --bind 127.0.0.1 8000

# Speed and memory figures (printed, not asserted): every benchmark in lib/allocsim/benchmarks.
bench: $(STAMP)
	$(PY) -m allocsim bench --all

clean:
	rm -rf _build

# Re-resolve requirements.in into requirements.lock in a scratch venv (needs the package index).
lock:
	rm -rf $(VENV)-lock && $(PYTHON) -m venv $(VENV)-lock
	$(VENV)-lock/bin/pip install --quiet --upgrade pip && $(VENV)-lock/bin/pip install --quiet -r requirements.in
	{ head -n 2 requirements.lock; $(VENV)-lock/bin/pip freeze --exclude-editable | grep -vE '^(pip|setuptools|wheel)=='; } > requirements.lock.new
	mv requirements.lock.new requirements.lock && rm -rf $(VENV)-lock
