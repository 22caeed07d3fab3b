"""Fig. 2 and accuracy against images per class from the results store alone, drawn for a page: the committed
offline-cpu figure redraws byte for byte, and no committed PDF carries a Type 3 font."""
import math

import fontTools
import matplotlib
import numpy as np
import pytest
from matplotlib.colors import to_rgba
from matplotlib.text import Text

from multitune_lib import paths
from multitune_lib.study import Study, figures

ROOT = paths.project_root()
COMMITTED = ROOT / "figures" / "offline-cpu"
T_975_2 = 4.302652729749464  # Student t, 97.5% quantile, 2 degrees of freedom (three seeds): from a t table


def legend_names(fig) -> list[str]:
    return [t.get_text() for t in fig.legends[0].get_texts()]


def y_of_lines(ax) -> np.ndarray:
    return np.concatenate([line.get_ydata() for line in ax.lines])


@pytest.fixture(scope="module")
def imagenet_cpu():
    study = Study("imagenet-cpu")
    return figures.fig2(study), figures.accuracy_by_row(study)


def test_an_empty_study_draws_no_panel(tmp_path):
    fig, caption = figures.fig2(Study("smoke", results=tmp_path / "store"))
    assert fig.axes == [] and caption == "No finished run of SpotTune, MultiTune yet."
    figures.save_fig(fig, tmp_path / "figures")
    assert (tmp_path / "figures" / "fig2.pdf").exists() and (tmp_path / "figures" / "fig2.png").exists()


def test_fig2_of_a_profile_validated_once_per_run_plots_images_per_class():
    """offline-cpu validates after the last epoch only: against epoch its points would sit on one another."""
    fig, caption = figures.fig2(Study("offline-cpu"))
    (ax,) = fig.axes  # one dataset: one panel
    assert [t.get_text() for t in ax.get_xticklabels()] == ["5", "10", "15"]
    assert ax.get_xlabel() == "images per class" and legend_names(fig) == ["SpotTune", "MultiTune"]
    assert caption.startswith("Fig. 2 (offline-cpu profile): every run was validated after its last epoch only")
    assert "mean over 2 seeds" in caption and "No point" not in caption  # offline-cpu has exactly these rows


def test_saved_figures_embed_truetype_fonts_and_no_date_or_version(tmp_path):
    """Type 3 fonts are refused for print; a creation date or a version would change every redraw of one store."""
    figures.save_fig(figures.fig2(Study("offline-cpu"))[0], tmp_path)
    pdf, png = (tmp_path / "fig2.pdf").read_bytes(), (tmp_path / "fig2.png").read_bytes()
    assert b"/Subtype /Type3" not in pdf and b"/FontFile2" in pdf and b"/CreationDate" not in pdf
    assert b"Matplotlib version" not in png


def test_fig2_of_the_committed_store_is_the_committed_fig2(tmp_path):
    """Byte for byte under the drawing stack the Makefile pins (another fontTools subsets the PDF's font apart)."""
    figures.save_fig(figures.fig2(Study("offline-cpu"))[0], tmp_path)
    drawn_with = f"matplotlib {matplotlib.__version__}, fontTools {fontTools.version}; the Makefile pins DRAWING"
    for name in ("fig2.png", "fig2.pdf"):
        assert (tmp_path / name).read_bytes() == (COMMITTED / name).read_bytes(), f"{name} drawn with {drawn_with}"


def test_no_committed_pdf_carries_a_type3_font():
    """Every published profile's PDFs (smoke's are not committed)."""
    pdfs = [p for p in (ROOT / "figures").rglob("*.pdf") if p.relative_to(ROOT / "figures").parts[0] != "smoke"]
    assert len(pdfs) >= 5 and [p for p in pdfs if b"/Subtype /Type3" in p.read_bytes()] == []


def test_fig2_bars_are_the_95_t_interval_of_the_mean(tmp_path, finish):
    study = Study("smoke", results=tmp_path)
    for seed, acc in enumerate([0.5, 0.6, 0.7]):  # one validation per run: Fig. 2 against images per class
        finish(study, study.config("spottune", "aircraft", 4, seed), acc)
    fig, caption = figures.fig2(study)
    half = T_975_2 * 10 / math.sqrt(3)  # sd 10 points: the bar is 60 -/+ 24.84, where +/- 1 sd would be 50 to 70
    assert [np.nanmin(y_of_lines(fig.axes[0])), np.nanmax(y_of_lines(fig.axes[0]))] == \
        pytest.approx([60 - half, 60 + half], rel=1e-9)  # the point and the caps of its bar
    assert "95% Student-t interval" in caption and "mean over 3 seeds" in caption


def test_fig2_axes_stop_at_100_percent_however_wide_the_interval(tmp_path, finish):
    """Two seeds 40 points apart: their t-interval (1 degree of freedom) reaches past 300%; the axis shows 0 to 100."""
    study = Study("smoke", results=tmp_path)
    for seed, acc in enumerate([0.5, 0.9]):
        finish(study, study.config("spottune", "aircraft", 4, seed), acc)
    ax = figures.fig2(study)[0].axes[0]
    assert np.nanmax(y_of_lines(ax)) > 300 and ax.get_ylim() == (0, 100)


def test_fig2_draws_a_panel_per_row_with_runs_and_names_the_rest(tmp_path, finish):
    study = Study("smoke", results=tmp_path)
    for n in (4, 2):  # validated twice each: Fig. 2 against epoch
        for method in ("spottune", "multitune"):
            finish(study, study.config(method, "aircraft", n, 0), 0.5, best=0.6)
    fig, caption = figures.fig2(study)
    assert [ax.get_title() for ax in fig.axes] == ["4 per class", "2 per class"]  # no empty panel for 6 or CIFAR
    assert all(ax.lines for ax in fig.axes) and fig.axes[0].get_ylabel() == "Aircraft classes 1-3\naccuracy (%)"
    assert ("No panel for Aircraft classes 1-3, 6 per class (no runs yet); CIFAR100 classes 1-3, 6 per class (no "
            "runs yet)") in caption and "CIFAR100 classes 1-3, 2 per class (no runs yet)." in caption


def test_fig2_tells_the_val_sample_from_the_whole_split(tmp_path, finish):
    """Curves validated on a sample of val before the last epoch: open markers there, filled on the whole split."""
    study = Study("smoke", results=tmp_path)
    for method in ("spottune", "multitune"):
        for seed in (0, 1):
            finish(study, study.config(method, "aircraft", 4, seed), 0.5,
                   history=[{"epoch": 1, "val_acc": 0.3, "val_images": 100}, {"epoch": 2, "val_acc": 0.5,
                                                                             "val_images": 900}])
    fig, caption = figures.fig2(study)
    assert "Open markers: a fixed sample of 100 val images" in caption
    assert "filled markers: the whole val split (epoch 2)" in caption
    markers = [(round(float(line.get_xdata()[0])), to_rgba(line.get_markerfacecolor()) == to_rgba("white"))
               for line in fig.axes[0].lines if line.get_marker() in ("o", "s") and len(line.get_xdata())]
    assert sorted(markers) == [(1, True), (1, True), (2, False), (2, False)]  # open at epoch 1, filled at 2


def test_fig2_legend_lists_the_methods_in_one_order_whichever_finished_first(tmp_path, finish):
    study = Study("smoke", results=tmp_path)
    spottune = study.config("spottune", "aircraft", 4, 0)
    # the store lists runs by digest: a MultiTune run listed first
    multitune = next(c for c in (study.config("multitune", "aircraft", 4, s) for s in range(50))
                     if c.digest() < spottune.digest())
    for cfg in (multitune, spottune):
        finish(study, cfg, 0.5, best=0.6)
    assert legend_names(figures.fig2(study)[0]) == ["SpotTune", "MultiTune"]


def test_the_imagenet_cpu_figures_fit_a_page(imagenet_cpu):
    """6.9 in wide, no text under 7 pt, percent axes from 0, and a panel only where there are runs."""
    (fig2, caption), (by_row, by_row_caption) = imagenet_cpu
    for fig in (fig2, by_row):
        fig.canvas.draw()  # tick labels are made when drawn
        sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_text() and t.get_visible()]
        assert fig.get_figwidth() == 6.9 and min(sizes) >= 7 and fig._suptitle is None
        assert all(ax.get_ylim()[0] == 0 and ax.get_ylim()[1] <= 100 for ax in fig.axes)
    assert [ax.get_title() for ax in fig2.axes] == ["whole dataset"] + [f"{n} per class" for n in (20, 15, 10, 5)] * 2
    assert "No panel for CIFAR100, whole dataset (not in the profile)." in caption
    assert "a fixed sample of 1,000 val images" in caption and "validated every 2 epochs" in caption
    assert [ax.get_title() for ax in by_row.axes] == ["Aircraft", "CIFAR100"]
    assert legend_names(by_row) == ["Fine-tuning", "L2-SP", "Feature extraction", "SpotTune", "MultiTune", "AMF"]
    assert "No point for CIFAR100, whole dataset (not in the profile)." in by_row_caption


def test_every_method_has_its_own_marker_and_line_style_in_its_registered_colour():
    names = list(figures.METHODS)
    styles = [figures.method_style(n) for n in names]
    assert len({s["marker"] for s in styles}) == len({str(s["linestyle"]) for s in styles}) == len(names)
    assert [s["color"] for s in styles] == [figures.METHODS.get(n).colour for n in names]
    assert figures.palette() == {"SpotTune": "tab:blue", "MultiTune": "tab:red"}
