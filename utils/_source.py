"""Where the helper package comes from: the one place that sets its URL and version.

The notebooks' set-up cell (``python -m coursekit.setup_cell apply``) pip-installs the package
from :data:`PIP_SOURCE` where ``utils`` is missing, or from the pip requirement in the environment
variable ``CNN_COURSE_PIP_SOURCE``. ``pyproject.toml`` reads :data:`VERSION`;
``tests/test_colab.py`` checks :data:`REPOSITORY` and :data:`REF` against ``_config.yml``.
"""

VERSION = "0.1.0"
REPOSITORY = "https://github.com/cnn-course/seeing-inside-cnns"
REF = "main"  # the branch (or tag) the set-up cell installs from
DISTRIBUTION = "cnn-vis-utils"
PIP_SOURCE = f"{DISTRIBUTION} @ git+{REPOSITORY}@{REF}"
PIP_SOURCE_ENV = "CNN_COURSE_PIP_SOURCE"
