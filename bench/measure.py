"""Timing and memory helpers for the benchmark."""

import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

MB = 1024 * 1024
_STARTED = time.perf_counter()


def elapsed() -> float:
    return time.perf_counter() - _STARTED


def say(message: str) -> None:
    """Progress, on standard error (the table goes to standard output)."""
    print(f"[bench {elapsed():7.1f} s] {message}", file=sys.stderr, flush=True)


def p50(samples: list[float]) -> float:
    return statistics.median(samples)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def busy_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    """How busy all the machine's cores were between two cpu_times() readings (0–1)."""
    total = after[1] - before[1]
    return (after[0] - before[0]) / total if total else 0.0


@dataclass(frozen=True)
class Timed:
    """One timed run of a piece of work: its wall time, how busy the machine's cores were
    meanwhile (0–1), and the CPU this process used."""

    wall: float
    busy: float
    process_cpu: float

    @property
    def machine_cpu(self) -> float:
        """CPU seconds of the whole machine during the run (this process, the servers, …)."""
        return self.busy * (os.cpu_count() or 1) * self.wall


def timed(work):
    """(Timed, what `work()` returned)."""
    started, cpu_before, process_before = time.perf_counter(), cpu_times(), time.process_time()
    result = work()
    wall = time.perf_counter() - started
    return Timed(wall, busy_share(cpu_before, cpu_times()), time.process_time() - process_before), result


def median_run(runs: list[Timed]) -> Timed:
    """The run of median wall time (the upper middle one of an even number)."""
    return sorted(runs, key=lambda run: run.wall)[len(runs) // 2]


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


@dataclass
class ProcessRun:
    """A subprocess run: its exit, wall time, peak RSS and the RSS sampled over time."""

    returncode: int
    seconds: float
    peak_rss: int  # bytes
    samples: list[tuple[float, int]] = field(default_factory=list)  # (seconds since start, RSS bytes)
    stdout: str = ""
    stderr: str = ""

    def rss_at(self, fraction: float) -> int:
        """The RSS sampled closest after `fraction` of the run."""
        moment = self.seconds * fraction
        later = [rss for at, rss in self.samples if at >= moment]
        return later[0] if later else self.peak_rss

    def growth_after(self, fraction: float) -> int:
        """How much the RSS grew after `fraction` of the run (bytes): near zero when flat."""
        moment = self.seconds * fraction
        later = [rss for at, rss in self.samples if at >= moment]
        return max(0, max(later) - later[0]) if later else 0

    def is_flat(self, *, after: float = 0.5, tolerance: int = 16 * MB) -> bool:
        """Flat: the second half of the run adds (almost) nothing to the peak. Memory that
        grows with the records handled would grow there as much as in the first half."""
        return self.growth_after(after) <= tolerance


def process_memory(pid: int) -> tuple[int, int] | None:
    """(VmRSS, VmHWM) of a running process, in bytes."""
    values = {}
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    values[line[:5]] = int(line.split()[1]) * 1024
    except OSError:
        return None
    if len(values) != 2:
        return None
    return values["VmRSS"], values["VmHWM"]


def run_process(args: list[str], *, env: dict[str, str], cwd: str, interval: float = 0.05) -> ProcessRun:
    """Run `args`, sampling its memory.

    The peak is the program's own high-water mark (VmHWM), read until it exits. The
    child's ru_maxrss would not do: it also counts the pages the child shared with this
    (large) process between fork and exec.
    """
    samples: list[tuple[float, int]] = []
    peak = [0]
    started = time.perf_counter()
    with (
        open(os.devnull, "rb") as stdin,
        subprocess.Popen(  # noqa: S603 (the callers pass fixed argument lists)
            args, cwd=cwd, env=env, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        ) as proc,
    ):
        done = threading.Event()

        def sample():
            while not done.is_set():
                memory = process_memory(proc.pid)
                if memory is not None:
                    samples.append((time.perf_counter() - started, memory[0]))
                    peak[0] = max(peak[0], memory[1])
                done.wait(interval)

        outputs: dict[str, str] = {}

        def drain(name, stream):
            outputs[name] = stream.read()

        threads = [
            threading.Thread(target=sample, daemon=True),
            threading.Thread(target=drain, args=("stdout", proc.stdout), daemon=True),
            threading.Thread(target=drain, args=("stderr", proc.stderr), daemon=True),
        ]
        for thread in threads:
            thread.start()
        returncode = proc.wait()
        seconds = time.perf_counter() - started
        done.set()
        for thread in threads:
            thread.join()
    return ProcessRun(
        returncode=returncode,
        seconds=seconds,
        peak_rss=max(peak[0], *(rss for _at, rss in samples), 0),
        samples=samples,
        stdout=outputs.get("stdout", ""),
        stderr=outputs.get("stderr", ""),
    )
