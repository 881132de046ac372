"""tune.claims on a scripted study: the interleavings that decide whether a variant in flight is
measured once, made to happen on purpose instead of hoped for in a concurrent run.

The study is a stand-in with Optuna's read and write calls (get_trials, set_user_attr), so a
read can be made to return what it saw *before* another worker wrote."""
import copy
import threading

from optuna.trial import TrialState

from workbench.tune.claims import CLAIM, claim_or_reuse
from workbench.tune.trial import Measurement

KEY = "k1"
OWNER = "otherhost:1"           # another host: never judged dead by pid


class FakeTrial:
    def __init__(self, number):
        self.number, self.state, self.user_attrs = number, TrialState.RUNNING, {}

    def set_user_attr(self, k, v):
        self.user_attrs[k] = v


class FakeStudy:
    def __init__(self, trials):
        self.trials, self.reads, self.on_read = trials, 0, None

    def get_trials(self, deepcopy=False, states=None):
        self.reads += 1
        seen = copy.deepcopy([t for t in self.trials if states is None or t.state in states])
        if self.on_read:                 # something happens after this read, before its caller acts
            hook, self.on_read = self.on_read, None
            hook()
        return seen


def measurement():
    return Measurement(variant={}, key=KEY, name="v", label="v", status="ok")


def test_a_claim_written_between_a_read_and_the_choosing_mark_is_waited_for():
    """A (trial 0) reads: nobody claims the key. Before A writes its choosing mark, B (trial 1,
    another worker) claims the key, sees no one, and starts measuring. A must not measure too
    although its trial number is lower: it takes its ticket from a read made after its mark
    (seeing B's), waits, and reuses B's measurement."""
    a, b = FakeTrial(0), FakeTrial(1)
    study = FakeStudy([a, b])
    stop = threading.Event()
    got_b = []

    def b_claims_and_starts_measuring():
        got_b.append(claim_or_reuse(study, b, KEY, OWNER, lock=threading.Lock(), stop=stop, patience=5, poll=0))

    study.on_read = b_claims_and_starts_measuring
    reads = study.reads

    def finish_b_later(*_):             # B stores its measurement a few of A's polls later
        if study.reads - reads > 6 and "measurement" not in b.user_attrs:
            b.set_user_attr("measurement", measurement().to_dict())
    real = study.get_trials
    study.get_trials = lambda **kw: (finish_b_later(), real(**kw))[1]
    got_a = claim_or_reuse(study, a, KEY, OWNER, lock=threading.Lock(), stop=stop, patience=5, poll=0)
    assert got_b == [None]                                   # B measures
    assert b.user_attrs[CLAIM]["ticket"] == 1
    assert a.user_attrs[CLAIM]["ticket"] == 2                # A saw B's ticket after its own mark
    assert got_a is not None and got_a[0] == 1, "both measured the variant"
    assert got_a[1].key == KEY


def test_a_worker_choosing_is_waited_for_and_a_stopped_run_does_not_wait():
    a, b = FakeTrial(0), FakeTrial(1)
    b.set_user_attr(CLAIM, {"key": KEY, "owner": OWNER, "ticket": 0, "choosing": True})
    study = FakeStudy([a, b])
    stop = threading.Event()
    t = threading.Timer(0.3, stop.set)
    t.start()
    # B never leaves "choosing" (its process hangs): A waits -- until the run stops
    assert claim_or_reuse(study, a, KEY, OWNER, lock=threading.Lock(), stop=stop, patience=30, poll=0.01) is None
    assert stop.is_set() and study.reads > 5


def test_patience_bounds_the_wait_for_a_claimant_that_never_finishes():
    a, b = FakeTrial(1), FakeTrial(0)
    b.set_user_attr(CLAIM, {"key": KEY, "owner": OWNER, "ticket": 1, "choosing": False})
    now = [0.0]

    def clock():
        now[0] += 1.0
        return now[0]
    study = FakeStudy([a, b])
    assert claim_or_reuse(study, a, KEY, OWNER, lock=threading.Lock(), stop=threading.Event(), patience=10,
                          poll=0, clock=clock) is None
    assert 8 <= study.reads <= 14                            # about `patience` polls, then it measures
