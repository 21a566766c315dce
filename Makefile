# Every target sets itself up: a fresh clone needs only Python 3.11+ and make.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test lint screenshots bench install-desktop clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,dev]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

run: $(STAMP)
	@$(BIN)/python -m halext_desktop.app.qtcheck
	$(BIN)/halext-desktop

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest

# Every package, tests and benches included: the layers contract, lint, format, types.
PY_DIRS := halext_desktop app ui storage routing resources tests bench
lint: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check $(PY_DIRS)
	$(BIN)/ruff format --check $(PY_DIRS)
	$(BIN)/mypy halext_desktop tests bench

screenshots: $(STAMP)
	xvfb-run -a -s "-screen 0 1600x1000x24" $(BIN)/python -m halext_desktop.app.qtcheck
	xvfb-run -a -s "-screen 0 1600x1000x24" $(BIN)/python -m tests.helpers.screenshots docs/screenshots
	xvfb-run -a -s "-screen 0 1600x1000x24" $(BIN)/python -m tests.helpers.screenshots_models docs/screenshots
	xvfb-run -a -s "-screen 0 1600x1000x24" $(BIN)/python -m tests.helpers.issue8_screenshots docs/screenshots
	xvfb-run -a -s "-screen 0 1600x1000x24" $(BIN)/python -m tests.helpers.screenshots_nothing_lost docs/screenshots
	xvfb-run -a -s "-screen 0 1600x1000x24" $(BIN)/python -m tests.helpers.screenshots_conversation docs/screenshots
	xvfb-run -a -s "-screen 0 1600x1000x24" $(BIN)/python -m tests.helpers.screenshots_issue10 docs/screenshots
	xvfb-run -a -s "-screen 0 1600x1000x24" $(BIN)/python -m tests.helpers.screenshots_rendering docs/screenshots

# Every benchmark, then issue 13's goal table (minutes; `make bench BENCH_ARGS=--quick` for a
# short run). Large databases are generated once and cached in ~/.cache/halext-bench.
BENCH_ARGS ?=
bench: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python bench/run_all.py $(BENCH_ARGS)

# Adds Halext Desktop to the Linux application menu (this checkout's .venv, current user).
install-desktop: $(STAMP)
	install -Dm644 resources/icons/halext-desktop.svg \
		$(HOME)/.local/share/icons/hicolor/scalable/apps/halext-desktop.svg
	mkdir -p $(HOME)/.local/share/applications
	sed "s|^Exec=halext-desktop|Exec=$(abspath $(BIN))/halext-desktop|" resources/halext-desktop.desktop \
		> $(HOME)/.local/share/applications/halext-desktop.desktop
	@echo "Installed: look for Halext Desktop in your application menu."

clean:
	rm -rf $(VENV) build *.egg-info
