"""Start one child process (a runner, maybe under nsys), log all it prints, pass its "[e2e]" lines
on as progress, and leave nothing of it behind.

The child gets a session of its own; when it ends (or times out, or the parent is interrupted),
whatever is left in that session — vLLM's engine-core process — is killed with it.
"""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable


@dataclass(frozen=True)
class ChildExit:
    returncode: int | None           # None: killed at the timeout
    seconds: float
    log: str
    tail: str                        # last lines it printed (for a failure reason)

    @property
    def timed_out(self) -> bool:
        return self.returncode is None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_child(cmd: list[str], *, env: dict[str, str], log: Path, progress: Callable[[str], None],
              timeout_s: float | None = None, cwd: str | None = None, tail_lines: int = 30) -> ChildExit:
    log.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    tail: list[str] = []
    with open(log, "a") as f:
        f.write(f"\n$ {' '.join(cmd)}\n")
        f.flush()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                text=True, errors="replace", bufsize=1, start_new_session=True)
        killed = threading.Event()

        def _deadline() -> None:
            if timeout_s is not None and not killed.wait(timeout_s):
                killed.set()
                _kill_group(proc.pid)

        watchdog = threading.Thread(target=_deadline, daemon=True)
        watchdog.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                f.write(line)
                tail.append(line.rstrip("\n"))
                del tail[:-tail_lines]
                if line.startswith("[e2e] "):
                    progress(line[6:].rstrip("\n"))
            rc = proc.wait()
        except BaseException:
            _kill_group(proc.pid)
            proc.wait()
            raise
        finally:
            timed_out = killed.is_set()
            killed.set()
            _kill_group(proc.pid)           # the engine core, if it outlived the runner
    return ChildExit(returncode=None if timed_out else rc, seconds=time.monotonic() - t0, log=str(log),
                     tail="\n".join(tail))
