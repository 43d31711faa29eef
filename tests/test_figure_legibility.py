"""Figures on the website: readable text at the page's width, titles that do not collide, and the
book build's figure format (JPEG for photographs, PNG for line art, smallest text recorded)."""

from __future__ import annotations

import base64
import io

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.text import Text

from utils.plots import MIN_TEXT_PT, PAGE_WIDTH_PX, legible, plot_feature_maps, plot_images


def _shown_pt(fig, text):
    """Size of ``text`` in points as a reader sees it once the page scales ``fig`` to its width."""
    scale = min(1.0, PAGE_WIDTH_PX / (fig.get_figwidth() * fig.dpi))
    return text.get_fontsize() * fig.dpi / 96 * scale


def test_legible_enlarges_small_text_of_a_wide_figure_only():
    fig, axes = plt.subplots(1, 8, figsize=(14, 2))
    for i, ax in enumerate(axes):
        ax.set_title(f"{i}", fontsize=6)
    big = fig.suptitle("a title", fontsize=40)
    legible(fig)
    titles = [ax.title for ax in axes]
    assert min(_shown_pt(fig, t) for t in titles) >= MIN_TEXT_PT
    assert big.get_fontsize() == 40  # large text is left alone
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(4, 3))  # narrower than the page: shown at its own size
    ax.set_title("t", fontsize=10)
    legible(fig)
    assert ax.title.get_fontsize() == 10
    plt.close(fig)


def test_helper_grids_read_at_least_9_pt():
    fig = plot_feature_maps(np.random.default_rng(0).random((1, 32, 8, 8)), title="maps")
    texts = [t for t in fig.findobj(Text) if t.get_text().strip() and t.get_visible()
             and t.axes is not None and t is t.axes.title]
    assert texts and min(_shown_pt(fig, t) for t in texts) >= MIN_TEXT_PT - 1e-6
    plt.close(fig)


def test_plot_images_title_sits_above_the_panel_titles():
    images = np.zeros((6, 8, 8, 3), np.uint8)
    fig = plot_images(images, [f"label {i}" for i in range(6)], ncols=6, cell=1.25,
                      title="biased training set: the colour gives the label away")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    top = fig._suptitle.get_window_extent(renderer)
    for ax in fig.axes:
        if ax.get_title():
            assert not top.overlaps(ax.title.get_window_extent(renderer)), ax.get_title()
    plt.close(fig)


@pytest.mark.slow
def test_book_kernels_send_photos_as_jpeg_and_record_the_smallest_text():
    from nbclient import NotebookClient
    from nbformat.v4 import new_code_cell, new_notebook

    from coursekit.notebooks import FIGURE_METADATA_KEY, kernel_env

    photo = ("import numpy as np, matplotlib.pyplot as plt\n"
             "from skimage import data\n"
             "fig, ax = plt.subplots(figsize=(6, 4)); ax.imshow(data.chelsea())\n"
             "ax.set_title('cat', fontsize=8); plt.show()")
    chart = ("fig, ax = plt.subplots(figsize=(6, 3)); ax.plot([1, 3, 2])\n"
             "ax.set_xlabel('step', fontsize=12); plt.show()")
    nb = new_notebook(cells=[new_code_cell(photo), new_code_cell(chart)])
    NotebookClient(nb, kernel_name="python3", timeout=120).execute(env=kernel_env())
    (photo_out,), (chart_out,) = ([o for o in c.outputs if o.output_type == "display_data"]
                                  for c in nb.cells)
    assert "image/jpeg" in photo_out.data and "image/png" not in photo_out.data
    assert "image/png" in chart_out.data and "image/jpeg" not in chart_out.data
    smallest = photo_out.metadata["image/jpeg"][FIGURE_METADATA_KEY]["smallest_text_px"]
    assert smallest == pytest.approx(8 * 100 / 72, rel=0.01)  # 8 pt at 100 dpi; axes ticks are 10
    from PIL import Image

    Image.open(io.BytesIO(base64.b64decode(chart_out.data["image/png"]))).verify()
