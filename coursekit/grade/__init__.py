"""Auto-grading of the course's exercise notebooks (``python -m coursekit.grade``).

Modules, in the order the grader uses them:

* :mod:`~coursekit.grade.source`: read ``solutions/*.ipynb`` (answers, public and hidden tests,
  points in cell metadata) and derive the learners' notebooks;
* :mod:`~coursekit.grade.plan`: rebuild a submission from the source (tests restored, answers taken
  from the student) as a list of code steps;
* :mod:`~coursekit.grade.sandbox` and :mod:`~coursekit.grade._launch`: start each kernel isolated
  (bubblewrap, unshare or nothing, whatever the machine offers) with a memory limit;
* :mod:`~coursekit.grade.runner`: execute the steps with time limits, restarting crashed kernels;
* :mod:`~coursekit.grade.values` and :mod:`~coursekit.grade.scoring`: compare probed values with the
  reference solution's, in the grader's own process, and decide points;
* :mod:`~coursekit.grade.results`, :mod:`~coursekit.grade.feedback`, :mod:`~coursekit.grade.batch` and
  :mod:`~coursekit.grade.cli`: the class-wide run (parallel, sharded, resumable), CSV and feedback.

The instructor guide is ``README.md, "For instructors"``.
"""
