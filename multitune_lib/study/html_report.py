"""A profile's HTML report: its executed notebooks (results/<profile>/notebooks/, written by `study`) as pages, and an
index showing Table 3 and Fig. 2 inline, in figures/<profile>/report/. Images are embedded, so the folder opens in
any browser without Jupyter and can be copied anywhere as it is."""
from __future__ import annotations

import base64
import html
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter
from nbconvert.filters.markdown_mistune import markdown2html_mistune

from .. import paths
from ..errors import ConfigError
from ..store import files
from . import profiles

STYLE = ("body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;line-height:1.4}"
         "table{border-collapse:collapse;font-size:.85rem}th,td{border:1px solid #ccc;padding:.2rem .4rem}"
         "img{max-width:100%}.failed{color:#b00}")


def write_report(profile: str) -> Path:
    """Render every executed notebook of `profile` and the index page linking them; returns the index."""
    executed = sorted(paths.executed_dir(profile).glob("*.ipynb"))
    if not executed:
        raise ConfigError(f"{paths.shown(paths.executed_dir(profile))} holds no executed notebooks of the {profile} "
                          f"profile: make them with `python -m multitune_lib study --profile {profile}`")
    out = paths.figures_dir(profile) / "report"
    exporter = HTMLExporter(template_name="lab", exclude_input_prompt=True, exclude_output_prompt=True,
                            embed_images=True)
    pages = {}
    for path in executed:
        nb = nbformat.read(path, as_version=4)
        write(out / f"{path.stem}.html", exporter.from_notebook_node(nb, {"metadata": {"name": path.stem}})[0])
        pages[path.stem] = failed_cell(nb)
    for old in out.glob("*.html"):  # pages of notebooks since renamed or removed
        if old.stem not in pages and old.name != "index.html":
            old.unlink()
    write(out / "index.html", index_page(profiles.get(profile), pages))
    return out / "index.html"


def failed_cell(nb) -> int | None:
    """The execution count of the first cell that raised (papermill stops there), else None."""
    for cell in nb.cells:
        if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            return cell.get("execution_count") or 0
    return None


def index_page(profile: profiles.Profile, pages: dict[str, int | None]) -> str:
    """Table 3 and Fig. 2 of the profile where notebook 04 made them, then a link to every notebook page."""
    figures = paths.figures_dir(profile.name)
    table, fig = figures / "table3.md", figures / "fig2.png"
    missing = (f"<p>Not made yet: run <code>python -m multitune_lib study --profile {profile.name} --only 04</code>"
               "</p>")
    alt = (f"Fig. 2 of the {profile.name} profile: validation accuracy of SpotTune (blue) and MultiTune (red) on "
           "each dataset, the whole dataset and fewer images per class")
    table3 = (markdown2html_mistune(table.read_text(encoding="utf-8")) if table.exists()
              else "<h1>Table 3</h1>" + missing)
    image = (f'<img src="data:image/png;base64,{base64.b64encode(fig.read_bytes()).decode()}" '
             f'alt="{html.escape(alt)}">') if fig.exists() else missing
    links = "".join(f'<li><a href="{html.escape(name)}.html">{html.escape(name)}</a>'
                    + (f' <span class="failed">stopped with an error in cell {cell}</span>' if cell is not None
                       else "") + "</li>" for name, cell in pages.items())
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>MultiTune against SpotTune: the '
            f"{profile.name} profile</title><style>{STYLE}</style></head><body>{table3}<h2>Fig. 2</h2>{image}"
            f"<h2>Notebooks</h2><ul>{links}</ul></body></html>\n")


def write(path: Path, text: str) -> None:
    with files.atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
