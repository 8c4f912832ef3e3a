"""`ProgressBarCallback`: a rich progress bar of environment steps.

The bar is drawn on the host; the jitted loop crosses to it once at training
start, once per iteration and once at training end, never per environment step.
It reaches the bar through `lerax.host`, as Lerax's `LoggingCallback`
does: compiled code holds only an integer handle, so every progress bar shares
one compilation (`learn(..., callback="progress")` twice compiles once), and a
token from the start call, kept in the state, orders the later calls after it.
"""

import numbers
from typing import Any, final

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Int, Key
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from lerax import host, members
from lerax.callback import (
    AbstractCallback,
    IterationContext,
    ResetContext,
    TrainingContext,
)


class _StepsPerSecond(ProgressColumn):
    """Environment steps per second, rich's estimate over recent updates."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        text = "- steps/s" if speed is None else f"{speed:,.0f} steps/s"
        return Text(text, style="progress.data.speed")


class _ProgressHost:
    """The host side of one `ProgressBarCallback`: the bar of its current run."""

    def __init__(self, console: Console | None, total_timesteps: int | None):
        self.console = console
        self.total_timesteps = total_timesteps
        self.progress: Progress | None = None
        self.task: TaskID | None = None

    def start(
        self,
        member: np.ndarray,
        total: np.ndarray,
        count: np.ndarray,
        *,
        running: np.ndarray,
        description: str,
    ) -> None:
        if 0 not in member:  # one bar for many members: member 0's crossing draws it
            return
        self.stop()  # a previous run that raised before its end
        if int(count[0]) > 1:
            description += f", {int(count[0])} members"
        self.progress = Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            MofNCompleteColumn(),
            _StepsPerSecond(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
        )
        self.task = self.progress.add_task(
            description, total=self.total_timesteps or int(total[0])
        )
        self.progress.start()

    def update(
        self, member: np.ndarray, step: np.ndarray, *, running: np.ndarray
    ) -> None:
        """Show the furthest step of the members in this crossing (each member's
        steps: members train in step)."""
        if self.progress is not None and self.task is not None and 0 in member:
            self.progress.update(self.task, completed=int(step[running].max()))

    def end(self, member: np.ndarray, step: np.ndarray, *, running: np.ndarray) -> None:
        if 0 in member:
            self.update(member, step, running=running)
            self.stop()

    def stop(self) -> None:
        """Draw the bar a last time and release the terminal, if it is shown."""
        progress, self.progress, self.task = self.progress, None, None
        if progress is not None:
            progress.stop()


@final
class ProgressBarCallback(AbstractCallback):
    """Show a rich progress bar of environment steps while `learn` runs.

    The bar appears when training starts, advances after every iteration and
    is drawn a last time when training ends (or stops early, where it stays at
    the step reached). It shows the algorithm and environment, the percentage,
    `steps/total`, steps per second, elapsed and remaining time.

    - `total_timesteps`: the bar's total; `None` (default) takes the
      `total_timesteps` given to `learn`.
    - `console`: the `rich.console.Console` to draw on; `None` uses rich's
      global console (standard output). On a terminal the bar redraws in place;
      elsewhere (a file, a pipe, a CI log) only the final bar is printed, as
      plain text.

    When `learn` trains many members, one bar shows them all (each member's
    steps; they train in step).

    Its state is the token that orders its host calls. Options live on the
    host, so bars with any options share one compiled loop. Call `close()` to
    remove a bar left on screen by a run that raised.
    """

    handle: Int[Array, ""]

    def __init__(self, total_timesteps: int | None = None, *, console: Any = None):
        if total_timesteps is not None:
            if isinstance(total_timesteps, bool) or not isinstance(
                total_timesteps, numbers.Integral
            ):
                raise TypeError(
                    f"total_timesteps must be an int, or None to take the total "
                    f"given to learn; got {total_timesteps!r}."
                )
            if total_timesteps < 1:
                raise ValueError(
                    f"total_timesteps must be at least 1, or None to take the "
                    f"total given to learn; got {total_timesteps!r}."
                )
        if console is not None and not isinstance(console, Console):
            raise TypeError(
                f"console must be a rich.console.Console or None (rich's global "
                f"console), got {type(console).__name__}; wrap a file as "
                f"Console(file=...)."
            )
        total = None if total_timesteps is None else int(total_timesteps)
        self.handle = host.register(_ProgressHost(console, total))

    @property
    def host(self) -> _ProgressHost:
        """The host side: console, total and the bar of the current run."""
        return host.lookup(self.handle)

    @property
    def total_timesteps(self) -> int | None:
        """The bar's total, or `None` for the `total_timesteps` given to `learn`."""
        return self.host.total_timesteps

    def reset(self, ctx: ResetContext, *, key: Key[Array, ""]) -> Int[Array, ""]:
        return host.new_token()

    def step_reset(self, ctx: ResetContext, *, key: Key[Array, ""]) -> None:
        return None

    def on_training_start(
        self, ctx: TrainingContext, *, key: Key[Array, ""]
    ) -> Int[Array, ""]:
        description = f"{type(ctx.algorithm).__name__} on {type(ctx.env).__name__}"
        return host.call(
            "start",
            self.handle,
            ctx.member,
            ctx.total_timesteps,
            members.count(jnp.asarray(True)),
            after=ctx.state,
            batched=True,
            description=description,
        )

    def on_iteration(
        self, ctx: IterationContext, *, key: Key[Array, ""]
    ) -> Int[Array, ""]:
        host.call(
            "update",
            self.handle,
            ctx.member,
            ctx.timestep,
            after=ctx.state,
            batched=True,
        )
        return ctx.state

    def on_training_end(
        self, ctx: TrainingContext, *, key: Key[Array, ""]
    ) -> Int[Array, ""]:
        host.call(
            "end", self.handle, ctx.member, ctx.timestep, after=ctx.state, batched=True
        )
        return ctx.state

    def close(self) -> None:
        """Stop showing the bar if a run left it on screen and free its host side;
        the callback cannot be used for training after this. Safe to call twice."""
        try:
            bar = self.host
        except LookupError:  # closed already
            return
        bar.stop()
        host.release(self.handle)

    def __enter__(self) -> "ProgressBarCallback":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
