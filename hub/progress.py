"""The live progress display of ``hub run``: rows in/out per table, rate, last checkpoint,
watermark lag, records sent to the dead letters.  Redraws in place on a terminal; prints a line every few seconds otherwise."""
from __future__ import annotations

import logging
import sys
import threading
import time
from typing import TextIO

from runtime.metrics import PipelineMetrics


def _fmt_int(n: int) -> str:
    return f"{n:,}"


def _age(seconds: float) -> str:
    if seconds < 1:
        return "now"
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    return f"{seconds / 60:.0f}min ago"


def render(metrics: PipelineMetrics, rates: dict[str, float], name: str) -> list[str]:
    now = time.time()
    lines = [f"{name}: running {now - metrics.started_at:,.0f}s"]
    totals = metrics.totals()
    width = max([len(t) for t in totals] + [5])
    lines.append(f"  {'table':<{width}}  {'rows in':>12}  {'rows out':>12}  {'rows/s':>10}")
    for table, (rin, rout) in totals.items():
        lines.append(f"  {table:<{width}}  {_fmt_int(rin):>12}  {_fmt_int(rout):>12}  "
                     f"{_fmt_int(int(rates.get(table, 0))):>10}")
    cp = metrics.last_checkpoint
    cp_text = (f"#{cp.checkpoint_id} {_age(now - cp.completed_at)} ({cp.duration_s * 1000:.0f}ms)"
               if cp else "none yet")
    wm = metrics.watermark_ms
    lag = f"{max(0.0, now - wm / 1000):,.1f}s" if wm is not None and wm < 2**62 else "-"
    dead = f"   dead letters {_fmt_int(metrics.dead_letters)}" if metrics.dead_letters else ""
    lines.append(f"  last checkpoint {cp_text}   watermark lag {lag}{dead}")
    gauges = metrics.gauge_values()
    if gauges:
        lines.append("  " + "   ".join(f"{k.replace('_', ' ')} {_fmt_gauge(v)}"
                                       for k, v in gauges.items()))
    return lines


def _fmt_gauge(v: float) -> str:
    return f"{v:,.0f}" if float(v).is_integer() else f"{v:,.2f}"


class ProgressDisplay(threading.Thread):
    def __init__(self, metrics: PipelineMetrics, name: str, out: TextIO = sys.stderr,
                 interval_s: float | None = None):
        super().__init__(name="progress", daemon=True)
        self.metrics, self.name_, self.out = metrics, name, out
        self.tty = out.isatty()
        self.interval = interval_s or (1.0 if self.tty else 10.0)
        self.stopped = threading.Event()
        self._drawn = 0
        self._lock = threading.Lock()   # draws and log lines take turns on the terminal
        self._last: dict[str, int] = {}
        self._last_t = time.monotonic()

    def _rates(self) -> dict[str, float]:
        now = time.monotonic()
        dt = max(now - self._last_t, 1e-6)
        out = {t: rout for t, (_, rout) in self.metrics.totals().items()}
        rates = {t: (n - self._last.get(t, 0)) / dt for t, n in out.items()}
        self._last, self._last_t = out, now
        return rates

    def attach(self, handler: logging.Handler) -> None:
        """Have ``handler`` (writing to the same terminal) erase the drawn block before each
        log line, so a redraw never overwrites a line that was logged in between."""
        if self.tty:
            handler.addFilter(self._erase)

    def _erase(self, record: logging.LogRecord) -> bool:
        with self._lock:
            if self._drawn:
                self.out.write(f"\x1b[{self._drawn}F\x1b[J")
                self.out.flush()
                self._drawn = 0
        return True

    def draw(self) -> None:
        with self._lock:
            self._draw()

    def _draw(self) -> None:
        lines = render(self.metrics, self._rates(), self.name_)
        if self.tty:
            if self._drawn:
                self.out.write(f"\x1b[{self._drawn}F\x1b[J")
            self.out.write("\n".join(lines) + "\n")
            self._drawn = len(lines)
        else:
            self.out.write(" | ".join(line.strip() for line in lines) + "\n")
        self.out.flush()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            self.draw()

    def stop(self) -> None:
        self.stopped.set()
