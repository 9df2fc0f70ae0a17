# filmfund: make install | make run | make test
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
LOCK := requirements.lock
TEST_LOCK := requirements-test.lock
HOST ?= 127.0.0.1
PORT ?= 5000
# The suite in two processes (pytest-xdist; the machines have 2 cores), each test file kept in one
# process (its module fixtures made once), in the order tests/conftest.py gives them: the files
# that start servers and browsers first, so that no long one is left to run alone at the end
# (xdist's own order, by number of tests, put them last). `make test PYTEST_ARGS=` runs it in one process.
PYTEST_ARGS ?= -n 2 --dist loadfile --no-loadscope-reorder

.PHONY: bytecode install install-test system-deps run test bench clean lock translations translations-compile

# ffmpeg/ffprobe are system packages: install them where we can (Debian/Ubuntu as root),
# otherwise stop with one line that says how.
system-deps:
	@if ! command -v ffmpeg >/dev/null 2>&1 || ! command -v ffprobe >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing ffmpeg (apt-get)"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null) || exit 1; \
	  else \
	    echo "error: filmfund needs ffmpeg and ffprobe: run 'sudo apt-get install ffmpeg'" >&2; exit 1; \
	  fi; \
	fi
	@# Chinese names in the rendered credits roll need a CJK font; without one the roll still renders.
	@if [ ! -e /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing fonts-noto-cjk (apt-get)"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-cjk >/dev/null) || exit 1; \
	  else \
	    echo "warning: Chinese names in the credits roll need a CJK font: run 'sudo apt-get install fonts-noto-cjk'" >&2; \
	  fi; \
	fi

	@# The partner's PDF statements are drawn by WeasyPrint, which needs Pango (a system library).
	@if ! ldconfig -p 2>/dev/null | grep -q 'libpango-1.0.so'; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing libpango-1.0-0 (apt-get)"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libpango-1.0-0 libpangoft2-1.0-0 >/dev/null) || exit 1; \
	  else \
	    echo "error: PDF statements need Pango: run 'sudo apt-get install libpango-1.0-0 libpangoft2-1.0-0'" >&2; exit 1; \
	  fi; \
	fi

$(PY):
	$(PYTHON) -m venv $(VENV)

# The versions installed are the lock files' (made by `make lock` from pyproject.toml's ranges):
# every install gets the same packages. Re-installed when pyproject.toml or the lock changes.
$(STAMP): pyproject.toml $(LOCK) | $(PY)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r $(LOCK)
	$(PIP) install -q --no-deps -e .
	@touch $(STAMP)

install: system-deps $(STAMP) translations-compile bytecode

# The project's own bytecode, compiled once here: pip compiles the packages it installs, but the
# editable project's modules would otherwise be compiled at every start wherever Python does not
# write its cache (PYTHONDONTWRITEBYTECODE): 0.25 s of CPU per process that builds the app.
# A module edited later is compiled from its source again (the cache records its time and size).
bytecode: $(STAMP)
	$(PY) -m compileall -q filmfund

# The compiled catalogues (.mo) are built, not committed; the app also builds a missing one at start.
TRANSLATIONS := filmfund/translations
translations-compile: $(STAMP)
	$(VENV)/bin/pybabel -q compile -d $(TRANSLATIONS)

# For producers and translators: gather every English text into the template, add the new ones
# to each language's messages.po (translate them there), then compile.
translations: $(STAMP)
	$(VENV)/bin/pybabel -q extract -F babel.cfg -k lazy_gettext -k _l -k refuse:2 --no-location --sort-output \
	  --project filmfund -o $(TRANSLATIONS)/messages.pot .
	$(VENV)/bin/pybabel -q update -i $(TRANSLATIONS)/messages.pot -d $(TRANSLATIONS) -N --ignore-obsolete
	$(VENV)/bin/pybabel -q compile -d $(TRANSLATIONS)

# The browser tests drive Debian's chromium (Playwright's own browser download is not used).
install-test: install
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium (apt-get)"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || exit 1; \
	  else \
	    echo "error: the browser tests need chromium: run 'sudo apt-get install chromium'" >&2; exit 1; \
	  fi; \
	fi
	@# The statements' tests read the PDF's text with pdftotext.
	@if ! command -v pdftotext >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing poppler-utils (apt-get)"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq poppler-utils >/dev/null) || exit 1; \
	  else \
	    echo "error: the statement tests need pdftotext: run 'sudo apt-get install poppler-utils'" >&2; exit 1; \
	  fi; \
	fi
	@# The test-only packages (schemathesis, moto, playwright, hypothesis...) are not compiled to
	@# bytecode as they are installed: the suite imports a few of their thousands of modules, which
	@# Python compiles as it first imports them (12 s of a clean install's 19 s here). The
	@# application's packages are compiled (install), for the command line's start. The editable
	@# project is installed already (install), and the test lock does not name it.
	@if [ ! -f $(TEST_STAMP) ] || [ pyproject.toml -nt $(TEST_STAMP) ] || [ $(TEST_LOCK) -nt $(TEST_STAMP) ]; then \
	  $(PIP) install -q --no-compile -r $(TEST_LOCK) && touch $(TEST_STAMP); fi

# Resolve pyproject.toml's ranges afresh in a clean virtualenv and write both lock files (the
# application's, and the application's with the test extras). Run after changing a dependency.
lock:
	rm -rf .lock-venv build
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install -q --upgrade pip
	.lock-venv/bin/pip install -q .
	@{ echo "# make lock: pip freeze of a clean install of filmfund (do not edit by hand)"; \
	  .lock-venv/bin/pip freeze --all --exclude-editable | grep -v -i -E '^(filmfund|pip|setuptools|wheel)( |=|@)'; } > $(LOCK)
	.lock-venv/bin/pip install -q '.[test]'
	@{ echo "# make lock: pip freeze of a clean install of filmfund[test] (do not edit by hand)"; \
	  .lock-venv/bin/pip freeze --all --exclude-editable | grep -v -i -E '^(filmfund|pip|setuptools|wheel)( |=|@)'; } > $(TEST_LOCK)
	rm -rf .lock-venv build

run: install
	$(VENV)/bin/filmfund db upgrade
	$(VENV)/bin/filmfund campaign load
	$(VENV)/bin/filmfund run --host $(HOST) --port $(PORT)

test: install-test
	$(VENV)/bin/lint-imports
	$(PY) -m pytest $(PYTEST_ARGS)

bench: install-test
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache
