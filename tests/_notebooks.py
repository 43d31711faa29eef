"""Small source notebooks for the grader's unit tests, written as lists of cells."""

import nbformat


def notebook(cells) -> nbformat.NotebookNode:
    """A notebook of ``(kind, text, grade metadata or None)`` cells, with ids ``c0, c1...``."""
    nb = nbformat.v4.new_notebook()
    for i, (kind, text, grade) in enumerate(cells):
        cell = (nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell)(text)
        cell.id = f"c{i}"
        if grade is not None:
            cell.metadata["grade"] = grade
        nb.cells.append(cell)
    return nb
