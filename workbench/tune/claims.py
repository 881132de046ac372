"""One measurement per variant across everything tuning a study: device threads of one process
and `workbench worker` processes on other hosts alike. Optuna can hand the same parameters to two
trials in flight (TPE with constant_liar still repeats itself, re-queued trials meet the
sampler's own picks), and each process only knows what it measured itself.

A trial claims its variant key in the study (a user attribute, so every process sees it) just
before measuring, and measures only when no earlier claim on that key is alive; otherwise it
waits for that measurement and reuses it. Claims are ordered like Lamport's bakery (a ticket one
above every claim seen, a "choosing" mark while the ticket is taken), because the storages offer
reads and writes but no compare-and-set: with plain "lowest trial number wins", a trial that
looked before a lower-numbered one wrote its claim would measure beside it.

Only a claim on a measurement in progress is waited for (a trial claims right before measuring
and its stored measurement releases it), so no wait can close a cycle; one bounded by `patience`
(a claimant on another host killed mid-measurement never releases its claim) ends in measuring.
"""
from __future__ import annotations

import socket
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

from workbench.tune.trial import Measurement

CLAIM = "claim"                    # trial user attribute: a Claim as a dict


@dataclass
class Claim:
    key: str                       # the variant key being measured
    owner: str                     # host:pid of the claiming process (storage.owner())
    ticket: int = 0                # bakery ticket; 0 while choosing
    choosing: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Any) -> "Claim | None":
        try:
            return cls(**{k: d[k] for k in cls.__dataclass_fields__})
        except (KeyError, TypeError):
            return None


def _alive(owner: str) -> bool:
    """False only for an owner on this host whose process is gone (a run killed mid-measurement)."""
    from workbench.tune.storage import _pid_alive
    host, _, pid = owner.rpartition(":")
    return host != socket.gethostname() or not pid.isdigit() or _pid_alive(int(pid))


def _look(study: Any, key: str, me: int) -> tuple[tuple[int, Measurement] | None, list[tuple[int, Claim]]]:
    """(a passing measurement of `key` stored by any trial -- finished, or still running after its
    measurement was stored -- or None; the live claims of other running, unmeasured trials on it)."""
    from optuna.trial import TrialState
    done, claims = None, []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.COMPLETE)):
        if t.number == me:
            continue
        m = t.user_attrs.get("measurement")
        if m:
            if m.get("key") == key and m.get("status") == "ok" and done is None:
                done = (t.number, Measurement.from_dict(m))
            continue
        c = Claim.from_dict(t.user_attrs.get(CLAIM))
        if t.state == TrialState.RUNNING and c is not None and c.key == key and _alive(c.owner):
            claims.append((t.number, c))
    return done, claims


def claim_or_reuse(study: Any, trial: Any, key: str, owner: str, *, lock: threading.Lock,
                   stop: threading.Event, patience: float, poll: float = 0.05,
                   clock: Callable[[], float] = time.monotonic) -> tuple[int, Measurement] | None:
    """Before measuring `trial` (variant `key`): (trial number, measurement) to reuse -- a passing
    measurement of the key that another trial stored, before or while this one waited -- or None:
    measure it (no earlier live claim, the run is stopping, or `patience` seconds ran out).
    `lock` guards the study as in the tuner; it is released while waiting."""
    with lock:
        done, others = _look(study, key, trial.number)
        if done is not None:
            return done
        trial.set_user_attr(CLAIM, Claim(key, owner).to_dict())                       # choosing
        # the ticket is taken from what is seen *after* the choosing mark is written: a claim this
        # read misses is then sure to see the mark, wait, and take a higher ticket
        done, others = _look(study, key, trial.number)
        if done is not None:
            return done
        ticket = 1 + max((c.ticket for _, c in others), default=0)
        trial.set_user_attr(CLAIM, Claim(key, owner, ticket=ticket, choosing=False).to_dict())
    mine = (ticket, trial.number)
    t0 = clock()
    while True:
        with lock:
            done, others = _look(study, key, trial.number)
        if done is not None:
            return done
        ahead = [n for n, c in others if c.choosing or (c.ticket, n) < mine]
        if not ahead or stop.is_set() or clock() - t0 > patience:
            return None
        time.sleep(poll)
