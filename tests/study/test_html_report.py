"""The HTML report: executed notebooks as pages and an index with Table 3 and Fig. 2, checked in a headless browser."""
import base64
import re
import shutil
import subprocess

import matplotlib.pyplot as plt
import nbformat
import papermill as pm
import pytest
from nbformat import v4

from multitune_lib import paths
from multitune_lib.study import html_report
from multitune_lib.study.kernel import kernel_name
from multitune_lib.tools import cli

CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH to open the report in (Debian: "
                                    "apt-get install chromium)")
TABLE3 = ("# Table 3 (smoke profile)\n\n| data | method | ours_final_pct |\n|---|---|---|\n"
          "| Aircraft | MultiTune | 31.00 |\n")


def dom(page) -> str:
    """The page as headless Chromium built it (scripts run, nothing fetched that an offline machine lacks)."""
    out = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "<body" in out.stdout, out.stderr[-2000:]
    return out.stdout


def assert_shows_table3_fig2_and_no_error(index) -> None:
    page = dom(index)
    assert re.search(r"<table[\s>]", page) and "<th>data</th>" in page and "Table 3" in page
    fig = re.search(r'<img src="data:image/png;base64,([^"]+)" alt="(Fig\. 2[^"]+)"', page)
    assert fig and base64.b64decode(fig.group(1)).startswith(b"\x89PNG"), "Fig. 2 missing or without alt text"
    assert "stopped with an error" not in page
    links = re.findall(r'<a href="([^"#]+\.html)">', page)
    assert links
    for link in links:
        notebook = dom(index.parent / link)
        assert "Traceback" not in notebook and "jp-Notebook" in notebook, link


@pytest.fixture
def smoke_dirs(tmp_path, monkeypatch):
    """The smoke profile's executed notebooks and figures in `tmp_path`: (executed, figures)."""
    executed, figures = tmp_path / "results" / "notebooks", tmp_path / "figures"
    executed.mkdir(parents=True)
    figures.mkdir()
    monkeypatch.setattr(paths, "executed_dir", lambda profile: executed)
    monkeypatch.setattr(paths, "figures_dir", lambda profile: figures)
    return executed, figures


def executed_notebook(source, out) -> None:
    """A small notebook run by papermill on the project kernel, as `study` runs the numbered ones: a table,
    a figure and a stderr line among its outputs."""
    nb = v4.new_notebook(cells=[
        v4.new_markdown_cell("# A smoke notebook"),
        v4.new_code_cell("import sys\nimport pandas as pd\nimport matplotlib.pyplot as plt\n"
                         "print('note', file=sys.stderr)\npd.DataFrame({'a': [1, 2]})"),
        v4.new_code_cell("plt.plot([1, 2], [3, 1]);"),
    ])
    nbformat.write(nb, source)
    pm.execute_notebook(source, out, kernel_name=kernel_name(), progress_bar=False)


def fig2(path) -> None:
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([1, 2], [1, 2])
    fig.savefig(path)
    plt.close(fig)


@needs_chromium
def test_the_report_of_executed_notebooks_shows_table3_fig2_and_no_error(smoke_dirs, tmp_path, capsys):
    executed, figures = smoke_dirs
    executed_notebook(tmp_path / "00_smoke.ipynb", executed / "00_smoke.ipynb")
    (figures / "table3.md").write_text(TABLE3)
    fig2(figures / "fig2.png")
    assert cli.main(["report", "--profile", "smoke"]) == 0
    index = figures / "report" / "index.html"
    assert f"wrote {index}" in capsys.readouterr().out
    assert_shows_table3_fig2_and_no_error(index)
    page = (figures / "report" / "00_smoke.html").read_text()
    assert "data:image/png;base64," in page and "<table" in page  # the figure embedded, the DataFrame a table


@needs_chromium
def test_the_committed_imagenet_cpu_report_shows_table3_fig2_and_no_error(tmp_path, monkeypatch):
    """The study's own executed notebooks, as committed, rendered into a temporary folder."""
    for name in ("table3.md", "fig2.png"):
        shutil.copy(paths.project_root() / "figures" / "imagenet-cpu" / name, tmp_path / name)
    monkeypatch.setattr(paths, "figures_dir", lambda profile: tmp_path)
    assert_shows_table3_fig2_and_no_error(html_report.write_report("imagenet-cpu"))


def test_a_notebook_that_stopped_on_an_error_is_flagged_on_the_index(smoke_dirs):
    executed, figures = smoke_dirs
    cell = v4.new_code_cell("1 / 0", execution_count=3, outputs=[v4.new_output(
        "error", ename="ZeroDivisionError", evalue="division by zero", traceback=["ZeroDivisionError  Traceback"])])
    nbformat.write(v4.new_notebook(cells=[cell]), executed / "02_multitune.ipynb")
    (figures / "report").mkdir()
    (figures / "report" / "09_renamed.html").write_text("an old page")
    index = html_report.write_report("smoke").read_text()
    assert "stopped with an error in cell 3" in index and 'href="02_multitune.html"' in index
    assert "Not made yet" in index and "--only 04" in index  # no table3.md or fig2.png
    assert "Traceback" in (figures / "report" / "02_multitune.html").read_text()  # what the browser check looks for
    assert not (figures / "report" / "09_renamed.html").exists()


def test_a_profile_without_executed_notebooks_is_one_line_naming_the_command(smoke_dirs, capsys):
    assert cli.main(["report", "--profile", "smoke"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "no executed notebooks" in err
    assert "`python -m multitune_lib study --profile smoke`" in err
