"""Read-only process and machine figures through psutil: resident memory and CPU time."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

GONE = (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess)


def rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in KiB; (0, 0) if it is gone. psutil gives no peak
    (high-water mark) of resident memory: that one is read from the kernel's status."""
    try:
        rss = psutil.Process(pid).memory_info().rss // 1024
        status = Path(f"/proc/{pid}/status").read_text()
    except (*GONE, FileNotFoundError, ProcessLookupError, PermissionError):
        return 0, 0
    hwm = next(
        (int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0
    )
    return rss, hwm


def pss_kib(pid: int) -> int:
    """Proportional set size in KiB: resident memory with each shared page divided among
    the processes sharing it, so that a sum over processes counts it once; 0 if gone."""
    try:
        return psutil.Process(pid).memory_full_info().pss // 1024
    except GONE:
        return 0


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds a process has used so far (None if it is gone)."""
    try:
        times = psutil.Process(pid).cpu_times()
    except GONE:
        return None
    return times.user + times.system


def machine_cpu() -> dict[str, float]:
    """CPU seconds of the whole machine, all cores: ``busy`` (all but idle and iowait),
    ``irq`` (hard + soft interrupts, e.g. loopback networking, charged to no process),
    ``steal`` (taken by the hypervisor for other guests) and ``total``."""
    times = psutil.cpu_times()
    parts = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
    value = {name: getattr(times, name, 0.0) for name in parts}
    total = sum(value.values())
    return {
        "busy": total - value["idle"] - value["iowait"],
        "irq": value["irq"] + value["softirq"],
        "steal": value["steal"],
        "total": total,
    }


def cmdline(pid: int) -> str:
    try:
        return " ".join(psutil.Process(pid).cmdline())
    except GONE:
        return ""


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``."""
    try:
        return [child.pid for child in psutil.Process(pid).children()]
    except GONE:
        return []


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``: its children, theirs, and so on. The embedded
    PostgreSQL's postmaster is a child of the program supervisord runs (bersinar.pg
    run_server), its backends and workers one level further down."""
    try:
        return [child.pid for child in psutil.Process(pid).children(recursive=True)]
    except GONE:
        return []


def pids_by_cmdline(needle: str) -> list[int]:
    """Processes whose command line contains ``needle`` (read only: used to find the
    broker and database processes whose CPU time is reported)."""
    return [
        process.pid
        for process in psutil.process_iter(["cmdline"])
        if needle in " ".join(process.info["cmdline"] or ())
    ]


@dataclass
class Group:
    """A named set of processes whose CPU time is added up."""

    name: str
    pids: list[int]
    start: dict[int, float] = field(default_factory=dict)


class CpuWindow:
    """CPU used by groups of processes, and by the machine, between begin() and end()."""

    def __init__(self, groups: dict[str, list[int]]):
        self.groups = {name: Group(name, list(pids)) for name, pids in groups.items()}
        self.elapsed = 0.0
        self.result: dict[str, float] = {}

    def add_new_pids(self, name: str, pids: list[int]) -> None:
        """Processes that appeared after begin() (e.g. a new database backend): all of
        their CPU time falls inside the window."""
        group = self.groups.setdefault(name, Group(name, []))
        for pid in pids:
            if pid not in group.start:
                group.pids.append(pid)
                group.start[pid] = 0.0

    def begin(self) -> None:
        self._t0 = time.monotonic()
        self._machine0 = machine_cpu()
        for group in self.groups.values():
            group.start = {}
            for pid in group.pids:
                value = cpu_seconds(pid)
                if value is not None:
                    group.start[pid] = value

    def end(self) -> dict[str, float]:
        """CPU used per group, in percent of ONE core (200 = both cores of a 2-core box),
        plus ``machine`` (everything busy), its ``interrupts`` and ``steal`` parts, and
        ``machine_cores`` (core count seen)."""
        self.elapsed = time.monotonic() - self._t0
        machine1, machine0 = machine_cpu(), self._machine0
        result = {}
        for name, group in self.groups.items():
            used = 0.0
            for pid, started in group.start.items():
                now = cpu_seconds(pid)
                if now is not None:
                    used += now - started
            result[name] = 100.0 * used / self.elapsed if self.elapsed else 0.0
        cores = os.cpu_count() or 1
        # /proc/stat sums all cores: shares of the whole machine, scaled to one core
        total = machine1["total"] - machine0["total"]
        for key, name in (
            ("busy", "machine"),
            ("irq", "interrupts (no process)"),
            ("steal", "steal (hypervisor)"),
        ):
            share = (machine1[key] - machine0[key]) / total if total > 0 else 0.0
            result[name] = 100.0 * share * cores
        result["machine_cores"] = cores
        self.result = result
        return result


class RssSampler:
    """Highest VmRSS seen per process over repeated sample() calls. ``trees`` (name ->
    PID): a process and all its descendants taken together (PostgreSQL: the program
    supervisord runs, the postmaster, a process per connection and the server's own),
    whose highest sums are kept: of PSS (what they take together) and of VmRSS (shared
    memory counted once per process). Reading PSS costs the kernel a walk of every
    mapping (some 70 ms for 60 processes on a busy 2-core machine), so trees are
    sampled at most once every ``tree_every`` seconds."""

    def __init__(
        self, pids: dict[str, int], trees: dict[str, int] | None = None, tree_every: float = 1.0
    ):
        self.pids = dict(pids)
        self.peak: dict[str, int] = {name: 0 for name in pids}
        self.trees = dict(trees or {})
        self.tree_peak = {name: {"processes": 0, "pss_kib": 0, "rss_kib": 0} for name in self.trees}
        self.tree_every = tree_every
        self._tree_sampled = float("-inf")

    def sample(self) -> None:
        for name, pid in self.pids.items():
            rss, _ = rss_kib(pid)
            if rss > self.peak[name]:
                self.peak[name] = rss
        if time.monotonic() - self._tree_sampled < self.tree_every:
            return
        self._tree_sampled = time.monotonic()
        for name, root in self.trees.items():
            members = [root, *descendants(root)]
            pss = sum(pss_kib(pid) for pid in members)
            rss = sum(rss_kib(pid)[0] for pid in members)
            peak = self.tree_peak[name]
            if pss > peak["pss_kib"]:
                peak.update(processes=len(members), pss_kib=pss)
            peak["rss_kib"] = max(peak["rss_kib"], rss)
