"""Watch Lerax train: a live progress bar and metrics table, or plain log lines.

Registers the logging backend `console`, so `learn(..., callback="console")` shows
progress. On a terminal it draws a [rich](https://rich.readthedocs.io) `Live`
display; anywhere else (pipes, files, CI logs) it prints a readable line every
few iterations, so logs stay free of control codes.

Importing this module is cheap: rich is imported when a backend is built.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, final

from lerax import hookimpl
from lerax.plugin import AbstractLoggingBackend

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
    from rich.live import Live
    from rich.text import Text

__all__ = ["TOTAL_TIMESTEPS_KEY", "ConsoleBackend", "format_duration", "format_value"]

TOTAL_TIMESTEPS_KEY = "run/total_timesteps"
"""Hyper-parameter read for the bar's length when `total_timesteps` is not given."""

SPEED_METRIC = "time/steps_per_second"
"""The training loop's own measure of one iteration's speed, preferred to the clock."""

PLAIN_METRICS = ("episode/return_ema", "episode/length_ema")
"""Metrics shown in the plain lines, besides step, percentage, speed and time left:
the moving averages, steadier than one iteration's `episode/return`."""

HIDDEN_METRICS = ("episode/return_mean", "episode/length_mean")
"""Deprecated names that `LoggingCallback` still sends for one release as copies
of `episode/return` and `episode/length`; the table leaves them out."""

MEMBERS_KEY = "run/members"
"""Hyper-parameter of a group's aggregate run: how many members train together."""

SPREAD_SUFFIXES = ("_std", "_min", "_max")
"""An aggregate run's spread of a metric across members; the table shows the
mean with `min to max` beside it instead of three more rows."""

BAR_WIDTH = (10, 40)
"""Narrowest and widest progress bar, in columns; it takes the room the line leaves."""

_GAP = "  "


def format_value(value: float) -> str:
    """A metric as a short, aligned-friendly string; NaN and infinities as `nan`, `inf`."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    magnitude = abs(value)
    if magnitude == 0:
        return "0"
    if magnitude >= 1e9 or magnitude < 1e-3:
        return f"{value:.2e}"
    if value == int(value):
        return f"{int(value):,}"
    if magnitude >= 1000:
        return f"{value:,.1f}"
    return f"{value:.4g}"


def format_duration(seconds: float) -> str:
    """`h:mm:ss`, or `-:--:--` when unknown."""
    if not math.isfinite(seconds) or seconds < 0:
        return "-:--:--"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def _group_and_leaf(name: str) -> tuple[str, str]:
    """`"train/policy_loss"` -> `("train", "policy_loss")`; `"loss"` -> `("", "loss")`."""
    group, _, leaf = name.partition("/")
    return (group, leaf) if leaf else ("", group)


def _positive_int(value: Any) -> bool:
    return (
        isinstance(value, numbers.Integral)
        and not isinstance(value, bool)
        and int(value) > 0
    )


@final
class ConsoleBackend(AbstractLoggingBackend):
    """Training progress in the terminal, or as plain lines when not on one.

    On an interactive terminal (rich's `console.is_interactive`: a terminal that is
    not dumb, unless `TTY_INTERACTIVE=0`) a rich `Live` display shows a progress
    bar (environment steps done of `total_timesteps`, percentage, the run's
    average speed as `avg N steps/s`, time elapsed and left) above a table of the
    latest metrics, grouped by the prefix of their names (`episode/`, `train/`,
    `time/`) and sorted (without the deprecated `episode/return_mean` and
    `episode/length_mean`); NaN (no episode finished yet) shows as `nan`. The table's
    `time/steps_per_second` is the speed since the previous row; the bar's `avg`
    is over the whole run, both timed by the training loop when the metrics carry
    `time/steps_per_second`. The bar and its figures fit the terminal's width:
    one line when there is room, else the timings go below the bar, wrapped
    between items but never cut (80, 60 and 40 columns keep every figure whole).
    The display refreshes `refresh_per_second` times a second from the latest
    iteration, and anything printed meanwhile appears above it.

    When `learn` trains many members, it shows their group's aggregate run: one
    bar (each member's steps), the speed of all members together, and a table
    of each metric's mean across members with its `min to max`.

    Elsewhere (pipes, files, CI logs) it prints one line at the first iteration
    and every `plain_every`-th (step, percentage, the moving averages of episode
    return and length, average steps per second, time left) and a final line when the run ends, without
    colours or cursor movement.

    `total_timesteps=None` gives an indeterminate bar, unless the run's
    hyper-parameters carry `run/total_timesteps`; it fills when training ends.
    `console` is the `rich.console.Console` to draw on (default: a new one on
    standard output). The display stops at training end and at `lerax_close()`,
    which is idempotent; the same backend can show several runs in turn.
    Printing the backend with rich (`console.print(backend)`) renders its current
    display, e.g. to keep a picture of a finished run.
    """

    def __init__(
        self,
        total_timesteps: int | None = None,
        *,
        console: Console | None = None,
        refresh_per_second: float = 4.0,
        plain_every: int = 10,
    ):
        from rich.console import Console

        if total_timesteps is not None and not _positive_int(total_timesteps):
            raise ValueError(
                f"total_timesteps must be a positive int (the steps passed to "
                f"learn) or None for an indeterminate bar, got {total_timesteps!r}."
            )
        if console is not None and not isinstance(console, Console):
            raise TypeError(
                f"console must be a rich.console.Console, e.g. Console(stderr=True), "
                f"or None for standard output; got {type(console).__name__}."
            )
        if (
            isinstance(refresh_per_second, bool)
            or not isinstance(refresh_per_second, numbers.Real)
            or not math.isfinite(refresh_per_second)
            or refresh_per_second <= 0
        ):
            raise ValueError(
                f"refresh_per_second must be a positive number such as 4, got "
                f"{refresh_per_second!r}."
            )
        if not _positive_int(plain_every):
            raise ValueError(
                f"plain_every must be a positive int (print a plain line every "
                f"that many iterations), got {plain_every!r}."
            )
        self.total_timesteps = None if total_timesteps is None else int(total_timesteps)
        self.console: Console = console if console is not None else Console()
        self.refresh_per_second = float(refresh_per_second)
        self.plain_every = int(plain_every)

        self._live: Live | None = None
        self._status = ""  # "training", then how the run ended; "" before any run
        self._ended_at: float | None = None  # freezes the elapsed time
        self._running = False
        self._run_name = ""
        self._total: int | None = None
        self._step = 0
        self._iterations = 0
        self._started_at = 0.0
        self._resumed_at = 0  # the step the next (resumed) run starts from
        self._origin = 0  # the step the current run started from
        self._metrics: dict[str, float] = {}
        self._timed = [0, 0.0]  # steps and seconds measured by the training loop
        self._members = 1  # runs trained together (a group's aggregate run)

    # ------------------------------------------------------------------ hooks

    def lerax_on_training_start(
        self, run_name: str, hyperparameters: Mapping[str, Any]
    ) -> None:
        if self._running:  # the previous run never said it ended
            self._finish("stopped")
        total = self.total_timesteps
        if total is None and _positive_int(hyperparameters.get(TOTAL_TIMESTEPS_KEY)):
            total = int(hyperparameters[TOTAL_TIMESTEPS_KEY])
        members = hyperparameters.get(MEMBERS_KEY)
        self._members = int(members) if isinstance(members, int) and members > 0 else 1
        self._running = True
        self._run_name = run_name
        self._total = total
        self._step = self._origin = self._resumed_at
        self._resumed_at = 0
        self._iterations = 0
        self._metrics = {}
        self._timed = [0, 0.0]
        self._status, self._ended_at = "training", None
        self._started_at = time.perf_counter()
        self._start_display()
        self._started_at = time.perf_counter()  # after rich's first import

    def lerax_on_resume(self, step: int, run_id: str | None) -> None:
        """The next run continues from `step`: progress and speed count from there."""
        self._resumed_at = int(step)

    def lerax_on_iteration(self, step: int, metrics: Mapping[str, float]) -> None:
        if not self._running:  # an iteration without a start: show it anyway
            self.lerax_on_training_start("training", {})
        steps, self._step = int(step) - self._step, int(step)
        self._iterations += 1
        self._metrics = {name: float(value) for name, value in metrics.items()}
        rate = self._metrics.get(SPEED_METRIC, math.nan)
        if steps > 0 and math.isfinite(rate) and rate > 0:
            self._timed = [self._timed[0] + steps, self._timed[1] + steps / rate]
        if self._total is not None and self._step > self._total:
            self._total = self._step  # more steps than announced: keep the bar sane
        if self._live is None and (
            self._iterations == 1 or self._iterations % self.plain_every == 0
        ):
            self._print_plain(self._plain_line())

    def lerax_on_training_end(self, step: int, reason: str) -> None:
        if self._running:
            self._step = max(self._step, int(step))
            self._finish("done" if reason == "completed" else reason)

    def lerax_close(self) -> None:
        if self._running:
            self._finish("stopped")

    # ---------------------------------------------------------------- display

    def _start_display(self) -> None:
        """Draw this run live on a terminal; elsewhere, say what it will train."""
        console = self.console
        if console.is_interactive:  # a terminal, not dumb, not TTY_INTERACTIVE=0
            from rich.errors import LiveError
            from rich.live import Live

            live = Live(
                console=console,
                refresh_per_second=self.refresh_per_second,
                get_renderable=self._renderable,
            )
            try:
                live.start(refresh=True)
            except LiveError:  # another live display owns the console (rich < 14)
                pass
            else:
                self._live = live
                return
        if self._total is None:
            total = "an unknown number of env steps"
        else:
            total = f"{self._total:,} env steps"
        if self._members > 1:
            total += f" each, {self._members} members"
        self._print_plain(f"{self._run_name}: training for {total}")

    def _finish(self, how: str) -> None:
        """End the current run: final frame or final line, then release the console."""
        self._running = False
        if self._total is None:
            self._total = max(self._step, 1)  # an indeterminate bar fills at the end
        self._status, self._ended_at = how, time.perf_counter()
        live, self._live = self._live, None
        if live is not None:
            live.stop()  # draws the final frame
        else:
            elapsed = format_duration(self._ended_at - self._started_at)
            self._print_plain(f"{how}: {self._plain_line()} | took {elapsed}")

    def _speed(self) -> float:
        """Steps per second over the run: as timed by the training loop when it
        reports `time/steps_per_second` (unaffected by how late events reach this
        thread), else by the clock since the start."""
        steps, seconds = self._timed
        if steps > 0 and seconds > 0:
            return steps / seconds
        elapsed = time.perf_counter() - self._started_at
        steps = self._step - self._origin  # a resumed run's own steps
        return steps / elapsed if elapsed > 0 and steps else math.nan

    def _speed_text(self) -> str:
        """The run's average speed, labelled `avg` to tell it from the table's
        `time/steps_per_second`, which is the speed since the previous row."""
        speed = self._speed()
        return f"avg {speed:,.0f} steps/s" if math.isfinite(speed) else "avg - steps/s"

    def _time_left(self) -> float:
        # With many members, steps count per member and the speed all of them.
        speed = self._speed() / self._members
        if self._total is None or not speed > 0:
            return math.nan
        return (self._total - self._step) / speed

    def _plain_line(self) -> str:
        """Step, percentage, episode return and length averages, speed, time left."""
        if self._total is None:
            parts = [f"step {self._step:,}"]
        else:
            percent = 100.0 * self._step / self._total
            parts = [f"step {self._step:,}/{self._total:,} ({percent:.1f}%)"]
        parts += [
            f"{name} {format_value(self._metrics[name])}"
            for name in PLAIN_METRICS
            if name in self._metrics
        ]
        parts.append(self._speed_text())
        if self._running and self._total is not None:
            parts.append(f"{format_duration(self._time_left())} left")
        return " | ".join(parts)

    def _print_plain(self, line: str) -> None:
        self.console.print(
            line, markup=False, highlight=False, emoji=False, soft_wrap=True
        )

    def _metrics_table(self) -> RenderableType:
        from rich import box
        from rich.table import Table
        from rich.text import Text

        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
        table.add_column("group", style="bold cyan")
        table.add_column("metric")
        metrics = self._metrics  # read once: the iteration thread replaces it
        spread = {
            name[: -len(suffix)]
            for name in metrics
            for suffix in SPREAD_SUFFIXES
            if name.endswith(suffix) and name[: -len(suffix)] in metrics
        }
        table.add_column("mean" if spread else "value", justify="right")
        if spread:
            table.add_column("min to max", justify="right")
        previous = None
        shown_names = [
            name
            for name in metrics
            if name not in HIDDEN_METRICS
            and not any(name == base + s for base in spread for s in SPREAD_SUFFIXES)
        ]
        for name in sorted(shown_names, key=_group_and_leaf):
            group, leaf = _group_and_leaf(name)
            value = metrics[name]
            cells = [  # Text, not str: names are never read as rich markup
                Text(group if group != previous else ""),
                Text(leaf),
                Text(
                    format_value(value), style="" if math.isfinite(value) else "yellow"
                ),
            ]
            if spread:
                low, high = metrics.get(f"{name}_min"), metrics.get(f"{name}_max")
                cells.append(
                    Text(f"{format_value(low)} to {format_value(high)}")
                    if low is not None and high is not None
                    else Text("")
                )
            table.add_row(*cells)
            previous = group
        return table

    def _elapsed(self) -> float:
        end = self._ended_at if self._ended_at is not None else time.perf_counter()
        return end - self._started_at if self._status else math.nan

    def _bar(self, width: int) -> Text:
        """A bar of `width` cells: done of the total, or a moving pulse without one."""
        from rich.text import Text

        bar = Text(no_wrap=True, overflow="crop")
        if self._total is None:  # indeterminate: a quarter-width pulse sweeps along
            size = max(width // 4, 1)
            at = int(time.perf_counter() * 8) % (width + size) - size
            for cell in range(width):
                pulse = at <= cell < at + size
                bar.append("━", "bar.pulse" if pulse else "bar.back")
            return bar
        fraction = min(max(self._step / self._total, 0.0), 1.0) if self._total else 0
        halves = round(fraction * width * 2)
        full, half = divmod(halves, 2)
        style = "bar.finished" if fraction >= 1 else "bar.complete"
        bar.append("━" * full, style)
        if half:
            bar.append("╸", style)
        bar.append("━" * (width - full - half), "bar.back")
        return bar

    def _progress_lines(self, width: int) -> list[Text]:
        """The status, bar and figures laid out in `width` columns.

        Everything fits on one line when it can with a bar of at least 20 columns;
        otherwise the bar line keeps status, bar, percentage and steps (steps move
        down when they do not fit) and the timings follow, wrapped between items
        but never inside one, so nothing is cut at any width.
        """
        from rich.text import Text

        status = self._status or "waiting"
        if self._total is None:
            percent, steps = "", f"{self._step:,} steps"
        else:
            percent = f"{100.0 * self._step / self._total:3.0f}%" if self._total else ""
            steps = f"{self._step:,}/{self._total:,} steps"
        timings = [self._speed_text(), f"{format_duration(self._elapsed())} elapsed"]
        if self._running and self._total is not None:
            timings.append(f"{format_duration(self._time_left())} left")

        def head(bar: int, items: list[str]) -> Text:
            line = Text.assemble((status, "bold"), " ", self._bar(bar))
            for item in [percent] if percent else []:
                line.append(f" {item}")
            for item in items:
                line.append(f"{_GAP}{item}")
            return line

        fixed = len(status) + 1 + (len(percent) + 1 if percent else 0)
        rest = [steps, *timings]
        one_line = fixed + sum(len(_GAP) + len(item) for item in rest)
        low, high = BAR_WIDTH
        if one_line + 2 * low <= width:
            return [head(min(high, width - one_line), rest)]
        beside = [steps] if fixed + low + len(_GAP) + len(steps) <= width else []
        room = width - fixed - sum(len(_GAP) + len(item) for item in beside)
        lines = [head(max(min(high, room), 1), beside)]
        line = ""
        for item in rest[len(beside) :]:
            if line and len(line) + len(_GAP) + len(item) > width:
                lines.append(Text(line))
                line = ""
            line = f"{line}{_GAP}{item}" if line else item
        lines.append(Text(line))
        return lines

    def _renderable(self) -> RenderableType:
        return self

    def __rich_console__(
        self, console: Console, options: ConsoleOptions
    ) -> RenderResult:
        """The current display (or the last run's), laid out for the width given:
        the run name and iteration, the progress lines, then the metrics table."""
        from rich.text import Text

        yield Text.assemble(
            (self._run_name or "lerax", "bold"),
            (f"  iteration {self._iterations}", "dim"),
        )
        yield from self._progress_lines(options.max_width)
        if self._metrics:
            yield self._metrics_table()


@hookimpl
def lerax_register_backends(register) -> None:
    register(
        "console",
        ConsoleBackend,
        "Live progress bar and metrics table on a terminal; plain lines in logs.",
    )
