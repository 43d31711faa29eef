# Two commands set everything up on a fresh machine:
#   make book   executes the lessons and builds the website into _build/html
#   make test   runs every test: unit tests, notebooks, grader, website
# Both create the virtual environment on first use. It lives outside the checkout, keyed by a
# hash of requirements.txt, so later runs (and fresh clones on the same machine) reuse it and a
# changed requirements.txt gets a fresh one. Override with `make VENV=/path/to/venv ...`.

SHELL := /bin/bash
PYTHON ?= python3
REQ_HASH := $(shell sha256sum requirements.txt | cut -c1-12)
VENV ?= $(HOME)/.cache/cnn-course/venv-$(REQ_HASH)
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Quiet TensorFlow's C++ start-up logging in every process we start (kernels included).
export TF_CPP_MIN_LOG_LEVEL := 3
export PYTHONWARNINGS := ignore::DeprecationWarning
export MPLBACKEND := Agg

.PHONY: help env lab lab-command book test test-fast lint exercises check-exercises bench mutation browser sandbox slurm grade venv clean

help:
	@echo "make book    build the website into _build/html (executes every lesson)"
	@echo "make test    run all tests (unit, notebooks, grader, website)"
	@echo "make lab     open JupyterLab on the lessons and exercises"
	@echo "make exercises   regenerate exercises/ from solutions/"
	@echo "make bench   run the benchmarks in benchmarks/"
	@echo "make mutation    mutation testing of the pure modules (benchmarks/results/mutation.json)"
	@echo "virtual environment: $(VENV)"

# No prerequisite on requirements.txt: its hash is in $(VENV)'s path already, and a fresh clone's
# file is always newer than the stamp, which would reinstall on every CI run.
$(STAMP):
	@echo "Creating the virtual environment in $(VENV) (first run only, several GB)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install -r requirements.txt
	touch $(STAMP)

# The editable install of `utils` must point at *this* checkout (a fresh clone elsewhere reuses the
# environment), so re-link it when it points somewhere else. find_spec does not import the package;
# -P keeps the current folder off sys.path, so the answer is the installed link, as kernels see it.
env: $(STAMP)
	@here=$$($(PY) -P -c "import importlib.util as u, os; s=u.find_spec('utils'); print(os.path.dirname(os.path.dirname(s.origin)) if s else '')"); \
	if [ "$$here" != "$(CURDIR)" ]; then \
	  echo "Linking utils to $(CURDIR)" >&2; \
	  $(PY) -m pip install --quiet --no-deps --no-build-isolation -e . ; fi

# Headless Chromium for the website test (Debian's package; nothing is downloaded at run time).
browser:
	@command -v chromium >/dev/null || { echo "Installing Debian's chromium for the website test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# bubblewrap gives the grader's kernels no network, a private process tree and a read-only view
# of the machine (see README, "Grading a class").
sandbox:
	@command -v bwrap >/dev/null || { echo "Installing Debian's bubblewrap for the grader's sandbox"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; }

# A single-node Slurm cluster for the test of the grader's job script (tests/test_slurm.py).
slurm:
	@command -v slurmctld >/dev/null && command -v sbatch >/dev/null || { \
	  echo "Installing Debian's Slurm (slurmctld, slurmd, client) for the job-script test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    slurmctld slurmd slurm-client >/dev/null; }

book: env
	$(PY) -m coursekit.build_book
	@echo "Website: $(CURDIR)/_build/html/index.html"

# JupyterLab on the lessons and exercises, in the course's environment. Jupyter refuses to start
# as root (containers, cloud VMs) unless told --allow-root, so root gets the flag. Extra options:
# `make lab LAB_ARGS="--port=9999 --no-browser"`. tests/test_lab.py starts $(LAB_CMD) as printed
# by `make lab-command`.
LAB_CMD = $(VENV)/bin/jupyter lab --notebook-dir=$(CURDIR)$(if $(filter 0,$(shell id -u)), --allow-root)
lab: env
	$(LAB_CMD) $(LAB_ARGS)

lab-command:
	@echo '$(LAB_CMD)'

# Unit, grader, notebook and website tests. Each notebook runs once: the lessons in the book build
# the website tests need (tests/test_lesson_checks.py compares their checked cells, as nbval --lax
# would), the solutions in the grader's reference run (tests/test_exercises_sync.py: every cell
# runs cleanly and every model answer passes its tests), and exercises/ as untouched submissions
# that must fail. tests/fixtures/ holds deliberately broken submissions. The slowest tests are
# listed at the end, to keep the run within its 20 minutes.
test: env browser sandbox slurm
	$(PY) -m pytest tests --ignore=tests/fixtures --durations=15

# Everything but the tests marked slow (over ~5 s each: grader batches, kernels, subprocesses,
# notebook execution, training) or browser: under 2 minutes on a 2-core machine.
test-fast: env
	$(PY) -m pytest tests -m "not slow and not browser"

# Mutation testing (benchmarks/mutation.py): not part of `make test`. mutmut lives in its own small
# environment next to the course's, which it sees through a .pth link (requirements.txt and the
# course environment stay as they are).
MUTMUT_VENV := $(VENV)-mutation
MUTMUT_STAMP := $(MUTMUT_VENV)/.installed-mutmut-3.8.1
$(MUTMUT_STAMP): $(STAMP)
	$(PY) -m venv $(MUTMUT_VENV)
	$(PY) -c "import sysconfig; print(sysconfig.get_paths()['purelib'])" > \
	  "$$($(MUTMUT_VENV)/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/_course_venv.pth"
	$(MUTMUT_VENV)/bin/python -m pip install --quiet "mutmut==3.8.1"
	touch $(MUTMUT_STAMP)

mutation: env $(MUTMUT_STAMP)
	$(MUTMUT_VENV)/bin/python benchmarks/mutation.py

lint: env
	$(VENV)/bin/ruff check utils coursekit tests benchmarks

# The environment's folder, for instructors' commands: source "$$(make -s venv)/bin/activate"
venv: env
	@echo "$(VENV)"

# Grade a class in the course's environment: make grade SUBMISSIONS=folder OUT=grades.csv
# (any other grader option in GRADE_OPTIONS, e.g. GRADE_OPTIONS="--jobs 2 --feedback feedback").
grade: env
	@test -n "$(SUBMISSIONS)" -a -n "$(OUT)" || { \
	  echo "usage: make grade SUBMISSIONS=folder OUT=grades.csv [GRADE_OPTIONS=...]" >&2; exit 2; }
	$(PY) -m coursekit.grade "$(SUBMISSIONS)" --out "$(OUT)" $(GRADE_OPTIONS)

exercises: env
	$(PY) -m coursekit.exercises build

check-exercises: env
	$(PY) -m coursekit.exercises check --execute

bench: env
	$(PY) benchmarks/capture_overhead.py
	$(PY) benchmarks/notebook_times.py
	$(PY) benchmarks/model_load.py
	$(PY) benchmarks/grading.py
	$(PY) benchmarks/dead_filter_scan.py

clean:
	rm -rf _build .pytest_cache
