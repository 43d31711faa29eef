"""Auto-grading of the course's exercise notebooks (``python -m utils.grade``).

Modules, in the order the grader uses them:

* :mod:`~utils.grade.source`: read ``solutions/*.ipynb`` (answers, public and hidden tests,
  points in cell metadata) and derive the learners' notebooks;
* :mod:`~utils.grade.plan`: rebuild a submission from the source (tests restored, answers taken
  from the student) as a list of code steps;
* :mod:`~utils.grade.sandbox` and :mod:`~utils.grade._launch`: start each kernel isolated
  (bubblewrap, unshare or nothing, whatever the machine offers) with a memory limit;
* :mod:`~utils.grade.runner`: execute the steps with time limits, restarting crashed kernels;
* :mod:`~utils.grade.values` and :mod:`~utils.grade.scoring`: compare probed values with the
  reference solution's, in the grader's own process, and decide points;
* :mod:`~utils.grade.results`, :mod:`~utils.grade.feedback`, :mod:`~utils.grade.batch` and
  :mod:`~utils.grade.cli`: the class-wide run (parallel, sharded, resumable), CSV and feedback.

The instructor guide is ``README.md, "For instructors"``.
"""
