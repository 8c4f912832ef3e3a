"""Start-up cost of `import lerax` and of `lerax plugins`, beyond bare interpreter start.

Run: `python benchmarks/startup.py [--runs N]`. Prints medians over N fresh
processes and whether the targets hold (`import lerax` <= 1 s in total; listing
plugins <= 0.3 s beyond interpreter start-up); then, in this process, what
making a `LoggingCallback` of the installed first-party backends costs, the
first time and after (its backends' imports come first, untimed).
"""

import argparse
import statistics
import subprocess
import sys
import time

CASES = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "import lerax": [sys.executable, "-c", "import lerax"],
    "import lerax.callback (JAX)": [sys.executable, "-c", "import lerax.callback"],
    "lerax plugins": [sys.executable, "-m", "lerax", "plugins"],
    "lerax plugins --json": [sys.executable, "-m", "lerax", "plugins", "--json"],
}


def median_seconds(command: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=False, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def logging_callback_ms(times: int = 5) -> list[float]:
    """Milliseconds to make a `LoggingCallback` of console, TensorBoard and W&B
    backends, `times` times (the first includes one-off work such as reading
    the plugins' entry points; the backends are made, and imported, untimed)."""
    import io
    import tempfile

    from rich.console import Console

    from lerax.logging import LoggingCallback
    from lerax_console import ConsoleBackend
    from lerax_tensorboard import TensorBoardBackend
    from lerax_wandb import WandbBackend

    directory = tempfile.mkdtemp(prefix="lerax-startup-")
    made = []
    for _ in range(times):
        backends = [
            ConsoleBackend(console=Console(file=io.StringIO())),
            TensorBoardBackend(directory),
            WandbBackend(dir=directory, mode="offline"),
        ]
        start = time.perf_counter()
        LoggingCallback(backends).close()
        made.append(1000 * (time.perf_counter() - start))
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    runs = parser.parse_args().runs
    results = {name: median_seconds(cmd, runs) for name, cmd in CASES.items()}
    base = results["python -c pass"]
    print(f"{'case':32} {'median s':>9} {'beyond start-up s':>18}")
    for name, seconds in results.items():
        print(f"{name:32} {seconds:9.3f} {seconds - base:18.3f}")
    checks = {
        "import lerax <= 1 s": results["import lerax"] <= 1.0,
        "lerax plugins <= 0.3 s beyond start-up": results["lerax plugins"] - base
        <= 0.3,
    }
    for check, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {check}")
    made = logging_callback_ms()
    print(
        f"LoggingCallback of the first-party backends: {made[0]:.0f} ms the first "
        f"time, then {statistics.median(made[1:]):.1f} ms"
    )


if __name__ == "__main__":
    main()
