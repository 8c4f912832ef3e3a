"""Start-up cost of `import lerax` and of `lerax plugins`, beyond bare interpreter start.

Run: `python benchmarks/startup.py [--runs N]`. Prints medians over N fresh
processes and whether the targets hold (`import lerax` <= 1 s in total; listing
plugins <= 0.3 s beyond interpreter start-up).
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


if __name__ == "__main__":
    main()
