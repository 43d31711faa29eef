"""The course's instructor and build tools, kept apart from the learners' helpers in ``utils``.

* :mod:`coursekit.grade`: the auto-grader (``python -m coursekit.grade SUBMISSIONS --out grades.csv``);
* :mod:`coursekit.exercises`: writes ``exercises/`` from ``solutions/`` and checks them;
* :mod:`coursekit.build_book`: executes the lessons and builds the website (``make book``);
* :mod:`coursekit.notebooks`: strip, check and execute notebooks.

These need the notebook tools (``pip install ".[instructor]"``); ``utils`` never imports them.
"""
