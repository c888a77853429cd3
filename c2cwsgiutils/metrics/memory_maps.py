"""A process's memory maps from ``/proc/<pid>/smaps``: the kB of each mapped file, summed by name.

Linux only. What :class:`c2cwsgiutils.prometheus.MemoryMapCollector` exports and
:func:`c2cwsgiutils.debug.dump_memory_maps` returns.
"""

import re

KINDS = ("pss", "rss", "size")
"""The sizes read: proportional set size, resident set size, mapped size."""
MAX_NAMES = 1000
"""Distinct mapping names kept per process; the memory of any more is summed under :data:`OTHER`."""
OTHER = "[other]"
_HEADER = re.compile(r"^[0-9a-f]+-[0-9a-f]+ ")
_FIELDS = {"Size": "size", "Rss": "rss", "Pss": "pss"}


class ProcessGoneError(Exception):
    """The process ended (or never was) before its maps could be read."""


def read_memory_maps(pid: int | str = "self") -> dict[str, dict[str, int]]:
    """Return ``{mapping name: {"pss": kB, "rss": kB, "size": kB}}`` of a process.

    Mappings with the same name (a library's text, data and bss) are summed; anonymous ones are
    named ``""``. Raises :class:`ProcessGoneError` when the process does not exist (any more),
    ``PermissionError`` when it is another user's, ``OSError`` for anything else.
    """
    if not (pid == "self" or str(pid).isdigit()):
        raise ValueError(f"not a process id: {pid!r}")
    maps: dict[str, dict[str, int]] = {}
    current: dict[str, int] | None = None
    try:
        with open(f"/proc/{pid}/smaps", encoding="utf-8", errors="replace") as smaps:
            for line in smaps:
                if _HEADER.match(line):
                    parts = line.rstrip("\n").split(None, 5)
                    name = parts[5] if len(parts) > 5 else ""
                    current = maps.get(name)
                    if current is None:
                        if len(maps) >= MAX_NAMES:
                            name = OTHER
                        current = maps.setdefault(name, dict.fromkeys(KINDS, 0))
                    continue
                field, _, value = line.partition(":")
                kind = _FIELDS.get(field)
                if kind is not None and current is not None:
                    current[kind] += int(value.split()[0])
    except FileNotFoundError as error:
        raise ProcessGoneError(str(pid)) from error
    except ProcessLookupError as error:  # ESRCH: it ended while it was being read
        raise ProcessGoneError(str(pid)) from error
    return maps
