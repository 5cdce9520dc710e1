"""A Table 1 / 3 row -> its per-AU breakdown: pick a table and a row, see
per AU its final score (and F1, accuracy, positives) under each estimate,
beside the table's Baseline row (:func:`aulib.report.tables.row_per_au`).
Only rows the workspace can fit are offered (the others are listed with
the reason, :func:`aulib.select.recipes.row_missing`). A row is fitted again
on first view (seconds to a minute, a busy sign meanwhile) and kept."""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..report.gains import ESTIMATES, STYLE
from ..report.tables import row_per_au
from ..select.recipes import load_table_spec, row_missing, table_rows
from .frontend import shown, widgets
from .widgets_common import Explorer, FigureView, as_workspace, one_redraw


class TableBreakdown(Explorer):
    """Controls ``table`` and ``row`` (dropdowns), ``metric``; panels
    ``view`` (per-AU dots per estimate) and ``html`` (the per-AU table);
    :meth:`frame` the numbers on screen."""

    def __init__(self, ws, spec=None, table: str | None = None, row: str | None = None):
        self.ws = as_workspace(ws)
        self.spec = load_table_spec(spec, self.ws)
        every = table_rows(self.spec)
        if not every:
            raise ValueError("the table spec gives no table runs (format: aulib.select.recipes)")
        why = {(t, r): row_missing(self.ws, self.spec, t, r) for t, rows in every.items() for r in rows}
        #: {table: rows it can fit}, {(table, row): why not} of the others
        self.rows = {t: [r for r in rows if why[(t, r)] is None] for t, rows in every.items()}
        self.unfit = {k: v for k, v in why.items() if v is not None}
        self._cache: dict[tuple[str, str], pd.DataFrame | str] = {}
        table = table or next((t for t, rows in self.rows.items() if rows), next(iter(self.rows)))
        options = self.rows[table]
        self.table = widgets.Dropdown(options=list(self.rows), value=table, description="table")
        self.row = widgets.Dropdown(options=options, value=row if row in options else (options or [None])[0],
                                    description="row", layout=widgets.Layout(width="420px"))
        self.metric = widgets.Dropdown(options=["final", "f1", "acc"], value="final", description="metric")
        self.view, self.html = FigureView(), widgets.HTML()
        self.busy = widgets.HTML()                 # the busy sign while a row is fitted
        self.busy.add_class("aulib-busy")
        self.skipped = widgets.HTML()              # rows not offered, and why
        self.skipped.add_class("aulib-skipped-rows")
        self._busy = False
        self.table.observe(lambda _: self._on_table(), "value")
        self.row.observe(lambda _: self._redraw(), "value")
        self.metric.observe(lambda _: self._redraw(), "value")
        self.widget = widgets.VBox([widgets.HBox([self.table, self.row, self.metric]), self.busy, self.view.widget,
                                    self.html, self.skipped])
        self.widget.add_class("aulib-explore-table")
        self._redraw()

    def per_au(self, table: str, row: str) -> pd.DataFrame | str:
        """:func:`row_per_au` of a row (kept), or why it has none; while it
        is fitted the busy sign shows and the controls are disabled."""
        if (table, row) not in self._cache:
            controls = (self.table, self.row, self.metric)
            self.busy.value = (f"<span class='aulib-busy-sign'>&#8987; fitting {table} · {row} again on its runs "
                               "(seconds to a minute)&hellip;</span>")
            for w in controls:
                w.disabled = True
            try:
                self._cache[(table, row)] = row_per_au(self.ws, self.spec, table, row)
            except (ValueError, FileNotFoundError, KeyError) as err:
                self._cache[(table, row)] = str(err)
            finally:
                for w in controls:
                    w.disabled = False
                self.busy.value = ""
        return self._cache[(table, row)]

    def frame(self) -> pd.DataFrame | str:
        """Per AU (index ``AU<n>``): ``<estimate>`` the row's metric,
        ``<estimate> vs Baseline`` its difference to the Baseline row, and
        ``positives`` (on B); or the reason the row has no breakdown."""
        if self.row.value is None:
            why = "; ".join(f"{r}: {v}" for (t, r), v in self.unfit.items() if t == self.table.value)
            return f"no row of {self.table.value} can be fitted in {self.ws.root} ({why})"
        got = self.per_au(self.table.value, self.row.value)
        if isinstance(got, str):
            return got
        base = (self.per_au(self.table.value, "Baseline")
                if self.row.value != "Baseline" and "Baseline" in self.rows[self.table.value] else None)
        m = self.metric.value
        out = pd.DataFrame(index=pd.Index([f"AU{a}" for a in got.loc[got["estimate"] == "B", "au"]], name="au"))
        for est in ESTIMATES:
            mine = got[got["estimate"] == est].set_index("au")[m]
            if mine.empty:
                continue
            out[est] = mine.to_numpy()
            if isinstance(base, pd.DataFrame):
                ref = base[base["estimate"] == est].set_index("au")[m].reindex(mine.index)
                out[f"{est} vs Baseline"] = (mine - ref).to_numpy()
        out["positives"] = got[got["estimate"] == "B"]["n_pos"].to_numpy().astype(int)
        return out

    def figure(self, frame: pd.DataFrame) -> Figure:
        fig = Figure(figsize=(10, 3.4), layout="constrained")
        ax = fig.add_subplot()
        x = np.arange(len(frame))
        for k, est in enumerate([e for e in ESTIMATES if e in frame.columns]):
            marker, colour = STYLE[est]
            ax.plot(x + (k - 1) * 0.18, frame[est], marker, color=colour, ms=5, ls="none", label=est)
        ax.set_xticks(x, frame.index, fontsize=8, rotation=0 if len(frame) <= 12 else 45)
        ax.set_ylabel(self.metric.value)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, ncols=3, loc="lower right")
        ax.set_title(f"{self.table.value} · {self.row.value}: per-AU {self.metric.value} by estimate", fontsize=9)
        return fig

    def _on_table(self):
        with one_redraw(self):
            self.row.options = self.rows[self.table.value]
            self.row.value = (self.rows[self.table.value] or [None])[0]

    def _redraw(self):
        if self._busy:
            return
        skipped = [f"{r} ({v})" for (t, r), v in self.unfit.items() if t == self.table.value]
        self.skipped.value = (f"<p><small>Rows not offered (nothing to fit): {'; '.join(skipped)}</small></p>"
                              if skipped else "")
        frame = self.frame()
        if isinstance(frame, str):                 # no figure of another row left under the message
            self.view.widget.layout.display = "none"
            self.html.value = f"<p><b>No breakdown:</b> {frame}</p>"
            return
        self.view.show(self.figure(frame))
        self.view.widget.layout.display = None
        fmt = {c: ("{:d}" if c == "positives" else "{:+.4f}" if "vs" in c else "{:.4f}") for c in frame.columns}
        self.html.value = frame.style.format(fmt, na_rep="–").to_html()


@shown
def table_breakdown(ws, spec=None, table: str | None = None, row: str | None = None) -> TableBreakdown:
    """The Table 1 / 3 row explorer (:class:`TableBreakdown`); ``spec`` as
    :func:`aulib.select.recipes.load_table_spec` (None: the workspace's)."""
    return TableBreakdown(ws, spec, table, row)
