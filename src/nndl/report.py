"""A run folder as one self-contained ``report.html`` (PNGs embedded as data URIs)."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from nndl._atomic import atomic_path

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem;
       color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.8rem 0; } td, th { border: 1px solid #bbb;
       padding: 0.25rem 0.6rem; text-align: left; } th { background: #eee; }
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

    def table(self, header, rows, sortable=False):
        """A table; ``sortable`` ones sort by a column when its header is clicked (numbers
        as numbers, percentages included; click again to reverse)."""
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                       for row in rows)
        cls = ' class="sortable"' if sortable else ""
        self.parts.append(f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
                          "</table>")
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


def pct(value):
    """``0.4973`` -> ``'49.7%'``; None -> ``'-'``."""
    return "-" if value is None else f"{100 * value:.1f}%"
