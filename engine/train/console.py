"""Console sinks: a rich progress bar, or one plain line per logged step.

``instrument: rich`` (the default) shows a live bar per run with step, loss, lr,
tokens/s and ETA when stdout is a terminal; ``plain`` — or ``rich`` when stdout is not a
terminal (CI logs, a subprocess, a pipe) — prints one fixed-format line per log step::

    [train] step    200/1000 | loss 1.8734 | lr 3.00e-04 | 12,345 tok/s | eta 0:01:23
"""

from __future__ import annotations

import datetime as _dt
import sys
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


def _eta(seconds: float | None) -> str:
    return str(_dt.timedelta(seconds=int(seconds))) if seconds is not None else "?"


class PlainConsole:
    """One line per progress/eval/checkpoint event."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def on_event(self, row: dict[str, Any]) -> None:
        ev, run = row["event"], row.get("run")
        if ev == "progress":
            self._print(f"[{run}] step {row['step']:>6}/{row['total']} | loss {row['loss']:.4f} | lr {row['lr']:.2e} | "
                        f"{row['tokens_per_s']:,.0f} tok/s | eta {_eta(row.get('eta_s'))}")
        elif ev == "eval":
            vals = " | ".join(f"{k} {v:.4f}" for k, v in row.items() if k.startswith("val_") and v is not None)
            self._print(f"[{run}] eval at step {row['step']} | {vals}")
        elif ev == "run_started":
            self._print(f"[{run}] started: {row['steps']} steps on {row.get('device')}"
                        + (f", resumed at step {row['start_step']}" if row.get("resumed") else ""))
        elif ev == "checkpoint":
            self._print(f"[{run}] checkpoint step {row['step']} -> {row['path']}")
        elif ev == "target_started":
            self._print(f"[target] {row.get('target')}: {'resuming' if row.get('resumed') else 'starting'} run "
                        f"{row.get('run_id')} in {row.get('run_dir')}")
        elif ev == "manifest_changed":
            self._print(f"[target] manifest changed since the run started: {'; '.join(row.get('changes', []))}")
        elif ev == "run_finished":
            metrics = row.get("metrics") or {}
            shown = " | ".join(f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, (int, float)))
            self._print(f"[{run}] {'already finished' if row.get('skipped') else 'finished'}: {shown}")
        elif ev == "artifact":
            self._print(f"[target] artifact ({row.get('kind')}): {row.get('path')}")
        elif ev == "target_finished":
            self._print(f"[target] {row.get('state')}")
        elif ev == "error":
            self._print(f"[{run or 'target'}] error: {row.get('message')}")

    def on_metric(self, row: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


class RichConsole:
    """A live progress bar per run plus one line per evaluation and checkpoint."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console()
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"), TextColumn("lr {task.fields[lr]}"),
            TextColumn("{task.fields[tps]} tok/s"), TimeRemainingColumn(), console=self.console)
        self.tasks: dict[str, Any] = {}
        self.progress.start()

    def on_event(self, row: dict[str, Any]) -> None:
        ev, run = row["event"], row.get("run")
        if ev == "run_started":
            self.tasks[run] = self.progress.add_task(str(run), total=row["steps"], completed=row.get("start_step", 0),
                                                     loss="-", lr="-", tps="-")
        elif ev == "progress" and run in self.tasks:
            self.progress.update(self.tasks[run], completed=row["step"], loss=f"{row['loss']:.4f}",
                                 lr=f"{row['lr']:.2e}", tps=f"{row['tokens_per_s']:,.0f}")
        elif ev == "eval":
            vals = " ".join(f"{k}={v:.4f}" for k, v in row.items() if k.startswith("val_") and v is not None)
            self.progress.console.print(f"[cyan]{run}[/] eval step {row['step']}: {vals}")
        elif ev == "checkpoint":
            self.progress.console.print(f"[dim]{run} checkpoint step {row['step']}[/]")
        elif ev == "manifest_changed":
            self.progress.console.print(f"[yellow]manifest changed since the run started:[/] "
                                        f"{escape('; '.join(row.get('changes', [])))}")
        elif ev == "error":
            self.progress.console.print(f"[red]{escape(str(row.get('message')))}[/]")

    def on_metric(self, row: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        self.progress.stop()


def make_console(instrument: str) -> PlainConsole | RichConsole:
    """``rich``/``auto``: a live bar on a terminal, plain lines otherwise; ``plain``: lines."""
    if instrument in ("rich", "auto") and sys.stdout.isatty():
        return RichConsole()
    return PlainConsole()
