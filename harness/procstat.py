"""Read-only process and machine figures from /proc: resident memory and CPU time.

Only the standard library: psutil is not a dependency of the project.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in KiB; (0, 0) if it is gone."""
    rss = hwm = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return rss, hwm


def pss_kib(pid: int) -> int:
    """Proportional set size in KiB: resident memory with each shared page divided among
    the processes sharing it, so that a sum over processes counts it once; 0 if gone."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds a process has used so far (None if it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = raw[raw.rindex(")") + 2 :].split()  # the command name may hold spaces
    return (int(fields[11]) + int(fields[12])) / TICKS


def machine_cpu() -> dict[str, float]:
    """CPU seconds of the whole machine, all cores, from /proc/stat: ``busy`` (all but
    idle and iowait), ``irq`` (hard + soft interrupts, e.g. loopback networking, charged
    to no process), ``steal`` (taken by the hypervisor for other guests) and ``total``."""
    parts = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in parts[:8]] + [0] * max(0, 8 - len(parts))
    user, nice, system, idle, iowait, irq, softirq, steal = values[:8]
    total = sum(values[:8])
    return {
        "busy": (total - idle - iowait) / TICKS,
        "irq": (irq + softirq) / TICKS,
        "steal": steal / TICKS,
        "total": total / TICKS,
    }


def cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return ""


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue  # gone meanwhile
        if int(raw[raw.rindex(")") + 2 :].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def pids_by_cmdline(needle: str) -> list[int]:
    """Processes whose command line contains ``needle`` (read only: used to find the
    broker and database processes whose CPU time is reported)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        if needle in cmdline(int(entry.name)):
            found.append(int(entry.name))
    return found


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
    PID): a process and its children taken together (PostgreSQL: a postmaster and a
    process per connection), whose highest sums are kept: of PSS (what they take
    together) and of VmRSS (shared memory counted once per process). Reading PSS costs
    the kernel a walk of every mapping (some 70 ms for 60 processes on a busy 2-core
    machine), so trees are sampled at most once every ``tree_every`` seconds."""

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
            members = [root, *children(root)]
            pss = sum(pss_kib(pid) for pid in members)
            rss = sum(rss_kib(pid)[0] for pid in members)
            peak = self.tree_peak[name]
            if pss > peak["pss_kib"]:
                peak.update(processes=len(members), pss_kib=pss)
            peak["rss_kib"] = max(peak["rss_kib"], rss)
