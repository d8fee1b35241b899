"""A run folder as one self-contained ``report.html`` (PNGs embedded as data URIs)."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from nndl._atomic import atomic_path

#: Laid out for a window of 1280 pixels or less: the page never scrolls sideways. A table
#: wider than the page scrolls inside its own box (.table-wrap); cells keep to one line
#: (headers break after an underscore), and a long text column is cut with an ellipsis,
#: its whole text in the cell's tooltip (``clip`` in :meth:`Report.table`).
_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem;
       color: #222; line-height: 1.45; }
p, figcaption { max-width: 60rem; }
h1 { border-bottom: 2px solid #444; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ccc; }
.table-wrap { max-width: 100%; overflow-x: auto; margin: 0.8rem 0; }
table { border-collapse: collapse; font-size: 0.9rem; } td, th { border: 1px solid #bbb;
       padding: 0.2rem 0.45rem; text-align: left; vertical-align: top; }
td { white-space: nowrap; } th { background: #eee; }
td.clip { max-width: 12rem; overflow: hidden; text-overflow: ellipsis; }
figure { margin: 1rem 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
.status { padding: 0.5rem 0.8rem; background: #fff3cd; border: 1px solid #e0c060; }
pre { background: #f6f6f6; padding: 0.6rem; overflow-x: auto; }
"""


_SORT_SCRIPT = """
document.querySelectorAll("table.sortable th").forEach((th, column) => {
  th.style.cursor = "pointer";
  th.title = "sort by this column";
  th.addEventListener("click", () => {
    const body = th.closest("table").tBodies[0];
    const key = (row) => {
      const text = row.cells[column].textContent.trim();
      const number = parseFloat(text.replace("%", ""));
      return Number.isNaN(number) ? text : number;
    };
    const up = th.dataset.order !== "up";
    th.dataset.order = up ? "up" : "down";
    const rows = Array.from(body.rows).sort((a, b) => {
      const x = key(a), y = key(b);
      const order = typeof x === typeof y ? (x < y ? -1 : x > y ? 1 : 0)
                                           : (typeof x === "number" ? -1 : 1);
      return up ? order : -order;
    });
    rows.forEach((row) => body.appendChild(row));
  });
});
"""


def data_uri(png_path):
    """``data:image/png;base64,...`` for the PNG at ``png_path``."""
    return "data:image/png;base64," + base64.b64encode(Path(png_path).read_bytes()).decode()


class Report:
    """Sections of paragraphs, tables, figures and preformatted text, rendered to HTML."""

    def __init__(self, title):
        self.title, self.parts, self.sortable = title, [], False

    def section(self, title, section_id=None):
        sid = section_id or title.lower().replace(" ", "-")
        self.parts.append(f'<h2 id="{html.escape(sid)}">{html.escape(title)}</h2>')
        return self

    def paragraph(self, text, css_class=None):
        cls = f' class="{css_class}"' if css_class else ""
        self.parts.append(f"<p{cls}>{html.escape(text)}</p>")
        return self

    def table(self, header, rows, sortable=False, clip=()):
        """A table in its own sideways-scrolling box, one line a row; ``sortable`` ones sort
        by a column when its header is clicked (numbers as numbers, percentages included;
        click again to reverse). The cells of the columns named in ``clip`` are cut to a
        width with an ellipsis, their whole text in a tooltip (``title``)."""
        head = "".join(f"<th>{_breakable(h)}</th>" for h in header)
        clipped = [h in clip for h in header]
        body = "".join("<tr>" + "".join(_cell(c, cut) for c, cut in zip(row, clipped))
                       + "</tr>" for row in rows)
        cls = ' class="sortable"' if sortable else ""
        self.parts.append(f'<div class="table-wrap"><table{cls}><thead><tr>{head}</tr></thead>'
                          f"<tbody>{body}</tbody></table></div>")
        self.sortable = self.sortable or sortable
        return self

    def figure(self, png_path, caption):
        if Path(png_path).is_file():
            self.parts.append(f'<figure><img src="{data_uri(png_path)}" alt="'
                              f'{html.escape(caption)}"><figcaption>{html.escape(caption)}'
                              "</figcaption></figure>")
        return self

    def preformatted(self, text):
        self.parts.append(f"<pre>{html.escape(text)}</pre>")
        return self

    def render(self):
        script = f"<script>{_SORT_SCRIPT}</script>" if self.sortable else ""
        return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>{html.escape(self.title)}</title><style>{_STYLE}</style></head>"
                f"<body><h1>{html.escape(self.title)}</h1>\n" + "\n".join(self.parts)
                + f"\n{script}</body></html>\n")

    def write(self, path):
        with atomic_path(path) as tmp:
            tmp.write_text(self.render(), encoding="utf-8")
        return Path(path)


def _breakable(header):
    """A header that may break after its underscores (``learning_rate_decay``)."""
    return html.escape(str(header)).replace("_", "_<wbr>")


def _cell(value, clip):
    text = html.escape(str(value))
    if clip and text:
        return f'<td class="clip" title="{text}">{text}</td>'
    return f"<td>{text}</td>"


def pct(value):
    """``0.4973`` -> ``'49.7%'``; None -> ``'-'``."""
    return "-" if value is None else f"{100 * value:.1f}%"
