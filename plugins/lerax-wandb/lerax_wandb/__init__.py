"""Log Lerax training to [Weights & Biases](https://wandb.ai): one W&B run per training.

Each training becomes a W&B run named after the Lerax run, with the algorithm,
env and policy hyper-parameters as its config and one history row per training
iteration at the environment step, so the x-axis of every chart is env steps.

Each run prints one line on stderr when it starts: where it is (its URL, or its
offline folder and the `wandb sync` command that uploads it), and why it is offline
when it fell back there for want of an API key or network (`quiet=True` or
`WANDB_SILENT=true` keep it quiet). `wandb` is
imported only when a backend is built, so plugin discovery stays fast.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, final
from urllib.parse import urlsplit

from lerax import hookimpl
from lerax.plugin import AbstractLoggingBackend

if TYPE_CHECKING:
    import wandb

_Mode = Literal["online", "offline", "disabled", "shared"]
MODES: tuple[_Mode, ...] = ("online", "offline", "disabled", "shared")
"""What `mode=` and `WANDB_MODE` may be (wandb's legacy `dryrun` and `run` too)."""

_LEGACY_MODES = {"dryrun": "offline", "run": "online"}
_DEFAULT_BASE_URL = "https://api.wandb.ai"
PROBE_TIMEOUT = 3.0
"""Seconds to wait for the W&B server to accept a connection before going offline."""
INIT_TIMEOUT = 30.0
"""Seconds `wandb.init` may take online (wandb's own default is 90)."""

_FALSE = ("", "0", "false", "no", "off")


def _say(message: str) -> None:
    """Print `message` as one line on stderr."""
    print(f"lerax-wandb: {' '.join(message.split())}", file=sys.stderr, flush=True)


def _mode(value: Any, source: str) -> _Mode:
    """`value` as one of `MODES`, or a `ValueError` that names `source`."""
    mode = _LEGACY_MODES.get(value, value) if isinstance(value, str) else value
    if mode not in MODES:
        raise ValueError(
            f"{source}={value!r} is not a W&B mode; use one of "
            f"{', '.join(map(repr, MODES))} (or leave it unset to log online "
            f"when an API key is configured and offline otherwise)."
        )
    return mode


def _has_credentials(base_url: str) -> bool:
    """Whether W&B credentials for `base_url` are configured, without any network.

    Looks where `wandb.init` would: `WANDB_API_KEY`, `WANDB_IDENTITY_TOKEN_FILE`,
    the netrc file and the W&B settings files.
    """
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    try:
        from wandb.sdk.lib import wbauth

        auth = wbauth.authenticate_session(
            host=base_url,
            source="lerax-wandb",
            prompt=False,
            verify=False,
            update_session=False,
        )
        return auth is not None
    except Exception:  # wandb-internal API moved: look for a netrc entry ourselves
        import netrc

        try:
            return (
                netrc.netrc().authenticators(urlsplit(base_url).hostname or "")
                is not None
            )
        except (OSError, netrc.NetrcParseError):
            return False


def _reachable(base_url: str, timeout: float = PROBE_TIMEOUT) -> bool:
    """Whether the W&B server at `base_url` accepts a TCP connection within `timeout`.

    Through a proxy a direct connection proves nothing, so it counts as reachable
    and `wandb.init` (bounded by its `init_timeout`) decides.
    """
    import socket
    import urllib.request

    parts = urlsplit(base_url)
    host = parts.hostname
    if not host:
        return False
    proxies = urllib.request.getproxies()
    if (parts.scheme in proxies) and not urllib.request.proxy_bypass(host):
        return True
    port = parts.port or (443 if parts.scheme == "https" else 80)
    connected: list[bool] = []

    def probe() -> None:  # in a thread: name resolution has no timeout of its own
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            connected.append(True)
        except OSError:
            pass

    thread = threading.Thread(target=probe, name="lerax-wandb-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(connected)


def _one_line(error: BaseException) -> str:
    text = re.sub(r"\s+", " ", str(error)).strip()
    return f"{type(error).__name__}: {text[:200]}" if text else type(error).__name__


def _new_run_id() -> str:
    """A fresh W&B run id, as wandb makes them (8 lowercase letters and digits)."""
    import secrets
    import string

    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(8))


def _finish_at_exit(backend: weakref.ref[WandbBackend]) -> None:
    alive = backend()
    if alive is not None:
        alive.lerax_close()


@final
class WandbBackend(AbstractLoggingBackend):
    """Send each training to a W&B run in `project`; extra options go to `wandb.init`.

    At training start it calls `wandb.init(project=project, name=<run name>,
    config=<hyper-parameters>, reinit="create_new", **init_options)`, so several
    trainings in one process make several runs and a run of your own is left
    alone; `name`, `reinit` and the rest can be overridden through
    `init_options`, and a `config` given there is merged under the
    hyper-parameters. Every iteration is one history row at `step=<env step>`;
    NaN and infinite values are logged as they are.

    The mode is `mode=` if given, else `WANDB_MODE`, else online. An online run
    without credentials, or whose server cannot be reached or does not answer
    within `INIT_TIMEOUT` seconds, is logged offline instead.

    Each run prints one line on stderr as it starts: its name and URL online;
    offline, its folder and the `wandb sync` command that uploads it, and why it
    is offline if online was asked for. `quiet=True` keeps it quiet, as does
    `WANDB_SILENT=true` when `quiet` is not given. Unless you set them (in `settings=` or as `WANDB_SILENT`,
    `WANDB_CONSOLE`, `WANDB_INIT_TIMEOUT`), wandb runs silent, without capturing
    the console (which other backends may be drawing on) and with
    `init_timeout=INIT_TIMEOUT`. `dir=` (or `WANDB_DIR`, else the working directory
    at training start) says where the `wandb/` folder goes. The run name is only
    the W&B run's display name, never part of a path, so whatever it holds every
    file stays in that folder.

    When `learn` trains many members, each member is its own W&B run
    (`<group>/member-<i>`, `job_type="member"`) and the aggregate across
    members one more (`<group>/aggregate`, `job_type="aggregate"`), all in one
    W&B `group` named after the group, so W&B's group view plots the members
    together; each member's config holds its own hyper-parameter values and key.

    `lerax_close` finishes the run; a run that did not reach the end of training
    (an interrupt, an error) is finished with exit code 1, which W&B shows as
    failed, and keeps every row logged before.
    """

    def __init__(
        self, project: str = "lerax", *, quiet: bool | None = None, **init_options: Any
    ):
        import inspect

        import wandb

        if not isinstance(project, str) or not project.strip():
            raise ValueError(
                f"project must be a non-empty string, got {project!r}; "
                f"pass e.g. project='lerax'."
            )
        accepted = set(inspect.signature(wandb.init).parameters) - {
            "project",
            "anonymous",
        }
        unknown = sorted(set(init_options) - accepted)
        if unknown:
            raise TypeError(
                f"{', '.join(map(repr, unknown))} "
                f"{'is not a wandb.init option' if len(unknown) == 1 else 'are not wandb.init options'}; "
                f"accepted: {', '.join(sorted(accepted))}."
            )
        if quiet is not None and not isinstance(quiet, bool):
            raise TypeError(
                f"quiet must be True (no start line on stderr), False or None "
                f"(quiet when WANDB_SILENT=true), got {quiet!r}."
            )
        mode = init_options.get("mode")
        if mode is not None:
            _mode(mode, "mode")
        elif os.environ.get("WANDB_MODE"):
            mode = _mode(os.environ["WANDB_MODE"], "WANDB_MODE")
        config = init_options.get("config")
        if config is not None and not isinstance(config, Mapping):
            raise TypeError(
                f"config must be a mapping of extra values to record with the "
                f"hyper-parameters, got {type(config).__name__}."
            )
        settings = init_options.get("settings")
        if isinstance(settings, Mapping):
            try:
                wandb.Settings(**settings)
            except Exception as error:
                raise ValueError(
                    f"settings={dict(settings)!r} are not valid wandb.Settings: "
                    f"{_one_line(error)}"
                ) from None
        elif settings is not None and not isinstance(settings, wandb.Settings):
            raise TypeError(
                f"settings must be a wandb.Settings or a dict, got "
                f"{type(settings).__name__}."
            )
        if init_options.get("dir") is not None:
            directory = Path(init_options["dir"])
            try:
                directory.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise OSError(
                    f"cannot write W&B runs to dir={str(directory)!r}: {error}"
                ) from None
            if not os.access(directory, os.W_OK):
                raise PermissionError(
                    f"cannot write W&B runs to dir={str(directory)!r}: not writable"
                )
        self.project = project
        self.quiet = quiet
        self.init_options = dict(init_options)
        self._runs: dict[int | None, wandb.Run] = {}
        self._ended: dict[int | None, bool] = {}
        self._next_id: str = _new_run_id()
        self._resuming = False
        self._lock = threading.Lock()
        if mode != "disabled":
            # Exit handlers run last-registered first. Starting wandb's service
            # now, before the LoggingCallback that will own this backend
            # registers its handler, means that at exit Lerax delivers the rows
            # still queued and closes this backend before wandb tears its
            # service down; the handler registered in between finishes the run
            # even if Lerax's close was cut short (Ctrl-C while it drained).
            wandb.setup()
            atexit.register(_finish_at_exit, weakref.ref(self))

    @property
    def run(self) -> wandb.Run | None:
        """The W&B run of the current training (with many members, the group's
        aggregate run), or `None` outside one."""
        return self._runs.get(None)

    @property
    def runs(self) -> dict[int | None, wandb.Run]:
        """The current training's W&B runs by member (`None`: the run itself,
        or a group's aggregate run)."""
        return dict(self._runs)

    def _base_url(self, settings: Any) -> str:
        import wandb

        if isinstance(settings, Mapping) and settings.get("base_url"):
            return str(settings["base_url"])
        if (
            isinstance(settings, wandb.Settings)
            and "base_url" in settings.model_fields_set
        ):
            return str(settings.base_url)
        return os.environ.get("WANDB_BASE_URL") or str(
            getattr(wandb.setup().settings, "base_url", None) or _DEFAULT_BASE_URL
        )

    def _choose_mode(self, requested: Any, settings: Any) -> tuple[_Mode, str | None]:
        """The mode to start in, and why it is offline when online was wanted."""
        if requested is None:
            requested = os.environ.get("WANDB_MODE") or "online"
            mode = _mode(requested, "WANDB_MODE")
        else:
            mode = _mode(requested, "mode")
        if mode in ("offline", "disabled"):
            return mode, None
        base_url = self._base_url(settings)
        if not _has_credentials(base_url):
            return "offline", (
                "no W&B API key found (set WANDB_API_KEY or run `wandb login`)"
            )
        if not _reachable(base_url):
            host = urlsplit(base_url).netloc or base_url
            return "offline", f"cannot reach the W&B server {host}"
        return mode, None

    @staticmethod
    def _settings(user: Any) -> wandb.Settings:
        """`user`'s settings over Lerax's defaults (silent, no console capture)."""
        import wandb

        values: dict[str, Any] = {}
        if "WANDB_SILENT" not in os.environ:
            values["silent"] = True
        if "WANDB_CONSOLE" not in os.environ:
            values["console"] = "off"
        if "WANDB_INIT_TIMEOUT" not in os.environ:
            values["init_timeout"] = INIT_TIMEOUT
        if isinstance(user, wandb.Settings):
            values.update({name: getattr(user, name) for name in user.model_fields_set})
        elif isinstance(user, Mapping):
            values.update(user)
        return wandb.Settings(**values)

    def _finish(self, member: int | None = None, *, every: bool = False) -> None:
        """Finish `member`'s run, or every run (call with the lock held)."""
        for who in list(self._runs) if every else [member]:
            run = self._runs.pop(who, None)
            ended = self._ended.pop(who, False)
            if run is not None:
                run.finish(exit_code=0 if ended else 1)

    def lerax_on_training_start(
        self,
        run_name: str,
        hyperparameters: Mapping[str, Any],
        member: int | None = None,
        group: str | None = None,
    ) -> None:
        import wandb

        with self._lock:
            if member is None:  # a new training: any previous one is over
                self._finish(every=True)
            options = dict(self.init_options)
            settings = options.pop("settings", None)
            mode, reason = self._choose_mode(options.pop("mode", None), settings)
            config = {**dict(options.pop("config", None) or {}), **hyperparameters}
            if group is not None:
                options.setdefault("group", group)
                options.setdefault(
                    "job_type", "aggregate" if member is None else "member"
                )
                if member is None:
                    run_name = f"{group}/aggregate"
            options.setdefault("name", run_name)
            options.setdefault("reinit", "create_new")
            if group is None:
                # The id is chosen before the run starts, so that checkpoints
                # written before wandb.init returns can name it (`resume_id`).
                options.setdefault("id", self._next_id)
                if self._resuming:  # continue the checkpointed run
                    options.setdefault("resume", "allow")
                    self._resuming = False
            if options.get("dir") is None:
                # wandb reads WANDB_DIR and the working directory once per
                # process; read them now, as the docs promise.
                options["dir"] = os.environ.get("WANDB_DIR") or os.getcwd()
                Path(options["dir"]).mkdir(parents=True, exist_ok=True)
            arguments = dict(
                project=self.project, config=config, settings=self._settings(settings)
            )
            try:
                run = wandb.init(mode=mode, **arguments, **options)
            except Exception as error:
                if mode in ("offline", "disabled"):
                    raise
                reason = f"W&B did not start an online run ({_one_line(error)})"
                mode = "offline"
                run = wandb.init(mode=mode, **arguments, **options)
            self._runs[member], self._ended[member] = run, False
        # One line per training: a group's members are named in its line.
        if member is None and not self._is_quiet():
            line = self._start_line(run, mode, reason)
            if line and group is not None:
                members = hyperparameters.get("run/members", "its")
                line += (
                    f" (the aggregate of group {group!r}, beside {members} member runs)"
                )
            if line:
                _say(line)

    def _is_quiet(self) -> bool:
        if self.quiet is not None:
            return self.quiet
        return os.environ.get("WANDB_SILENT", "").strip().lower() not in _FALSE

    @staticmethod
    def _start_line(run: Any, mode: str, reason: str | None) -> str:
        """Where `run` goes: its URL online, its folder and how to upload it offline."""
        if mode == "disabled":
            return ""
        name = getattr(run, "name", None) or getattr(run, "id", "?")
        if mode == "offline":
            folder = Path(run.settings.sync_dir).absolute()
            why = f": {reason}" if reason else ""
            return (
                f"run {name!r} is logged offline in {folder}{why}; "
                f"upload it with `wandb sync {folder}`"
            )
        url = getattr(run, "url", None)
        return f"run {name!r} is logged to {url}" if url else f"run {name!r} started"

    def lerax_on_iteration(
        self, step: int, metrics: Mapping[str, float], member: int | None = None
    ) -> None:
        with self._lock:
            run = self._runs.get(member)
            if run is not None:
                run.log(dict(metrics), step=int(step))

    def lerax_on_training_end(
        self, step: int, reason: str, member: int | None = None
    ) -> None:
        with self._lock:
            if member in self._runs:  # W&B shows all but interrupted runs finished
                self._ended[member] = reason != "interrupted"
            if member is None:
                self._next_id = _new_run_id()  # for the next training

    def lerax_on_resume(self, step: int, run_id: str | None) -> None:
        """The next run continues a checkpointed one: the W&B run `run_id`
        (`resume="allow"`); W&B ignores rows at steps it already has."""
        if run_id is not None:
            with self._lock:
                self._next_id, self._resuming = run_id, True

    def resume_id(self) -> str | None:
        """The W&B id of the current run (or of the one about to start), saved
        in checkpoints to resume it."""
        run = self._runs.get(None)
        if run is not None and not self._ended.get(None, False):
            return str(run.id)
        return str(self.init_options.get("id") or self._next_id)

    def lerax_close(self) -> None:
        with self._lock:
            self._finish(every=True)


@hookimpl
def lerax_register_backends(register) -> None:
    register(
        "wandb",
        WandbBackend,
        "Weights & Biases runs (offline when there is no API key or network).",
    )
