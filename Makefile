# filmfund: make install | make run | make test
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: install install-test system-deps run test bench clean

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

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e .
	@touch $(STAMP)

install: system-deps $(STAMP)

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
	@if [ ! -f $(TEST_STAMP) ] || [ pyproject.toml -nt $(TEST_STAMP) ]; then \
	  $(PIP) install -q -e '.[test]' && touch $(TEST_STAMP); fi

run: install
	$(VENV)/bin/filmfund db upgrade
	$(VENV)/bin/filmfund campaign load
	$(VENV)/bin/filmfund run --host $(HOST) --port $(PORT)

test: install-test
	$(PY) -m pytest $(PYTEST_ARGS)

bench: install-test
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache
