"""Where the course's helper package comes from: the one place that sets its URL and version.

Notebooks opened outside the course's environment (Colab, Binder, a plain Jupyter) start with a
set-up cell that pip-installs the package from here when ``utils`` is missing; the cell's text is
generated from these constants by ``python -m coursekit.setup_cell apply``. ``pyproject.toml``
reads :data:`VERSION` as the package version, and ``tests/test_colab.py`` checks that
:data:`REPOSITORY` and :data:`REF` match ``repository.url`` and ``repository.branch`` in
``_config.yml`` (the website's Colab/Binder buttons open notebooks from that branch, so the helpers
come from the same commit as the notebook).

Set the environment variable ``CNN_COURSE_PIP_SOURCE`` to any pip requirement to install from
somewhere else: a wheel (``/path/cnn_vis_utils-0.1.0-py3-none-any.whl``), a fork or a tag
(``git+https://github.com/you/seeing-inside-cnns@v0.1.0``).
"""

VERSION = "0.1.0"
REPOSITORY = "https://github.com/cnn-course/seeing-inside-cnns"
REF = "main"  # the branch (or tag) the set-up cell installs from
DISTRIBUTION = "cnn-vis-utils"
PIP_SOURCE = f"{DISTRIBUTION} @ git+{REPOSITORY}@{REF}"
PIP_SOURCE_ENV = "CNN_COURSE_PIP_SOURCE"
