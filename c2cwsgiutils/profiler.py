"""Profile a block or a function with cProfile, and save the statistics to a file (upstream 6.1's).

```python
from c2cwsgiutils.profiler import Profile

with Profile("/tmp/build.prof", print_number=20):
    build()


@Profile("/tmp/render.prof")
def render() -> None: ...
```

The file is ``pstats``' (``python -m pstats /tmp/build.prof``, snakeviz...). It is written at the
end of each run; the statistics add up over the runs of one ``Profile`` (a decorated function
called many times, the file holds all its calls so far). A positive ``print_number`` also prints
that many functions, the most expensive first (cumulative time), to standard output.
"""

import contextlib
import cProfile
import os
import pstats
import sys
from types import TracebackType


class Profile(contextlib.ContextDecorator):
    """cProfile as a ``with`` block or a decorator; the statistics go to ``path`` at each exit."""

    def __init__(self, path: str | os.PathLike[str], print_number: int = 0) -> None:
        self.path = path
        self.print_number = print_number
        self.pr = cProfile.Profile()

    def __enter__(self) -> None:
        self.pr.enable()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.pr.disable()
        self.pr.dump_stats(self.path)
        if self.print_number > 0:
            stats = pstats.Stats(self.pr, stream=sys.stdout)
            stats.sort_stats(pstats.SortKey.CUMULATIVE).print_stats(self.print_number)
