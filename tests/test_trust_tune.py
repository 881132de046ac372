"""Issue 14, "Secrets and bad input", the parts that need a tuning run -- on the replay backend
(real measurements recorded on an NVIDIA H100 80GB HBM3 on 2026-11-21, see test_tune.py):
a storage password reaches no screen and no file, every command finds a study in its default
location whichever store holds it, an edited space is refused before any trial is asked, and
Ctrl-C stops cleanly (exit 130, nothing left RUNNING, the same command resumes)."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REPLAY = ROOT / "tests/fixtures/h100-2026-11-21/replay.json"
SPACE = ROOT / "tests/fixtures/replay-space.yaml"
BASE = ["tune", "--gpu", "h100", "--model", "llama-3.1-8b", "--replay", str(REPLAY), "--profile", "none", "--seed", "1"]


def wb(args, home, timeout=300):
    env = {**os.environ, "WORKBENCH_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "workbench", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout)


def trials_of(storage, study):
    import optuna
    from workbench.tune.storage import open_storage
    return optuna.load_study(study_name=study, storage=open_storage(storage)).get_trials(deepcopy=False)


def files_holding(root: Path, secret: str) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


# ---- 1. a storage password reaches no screen and no file -------------------------------------
@pytest.mark.parametrize("as_json", [False, True])
def test_password_in_storage_url_is_never_shown_or_written(tmp_path, as_json):
    """A real run on a storage URL that carries a password (SQLite accepts and ignores a
    `?password=` query argument, so this runs on CPU)."""
    url = f"sqlite:///{tmp_path}/s.db?sslmode=x&password=hunter2"
    p = wb([*BASE, "--space", SPACE, "--trials", "6", "--study", "pw", "--storage", url,
            *(["--json"] if as_json else [])], tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "hunter2" not in p.stdout + p.stderr
    assert "password=***" in p.stdout + p.stderr                     # the storage is named, masked
    assert (tmp_path / "runs/pw/last-screen.txt").exists()
    assert "password=***" in (tmp_path / "runs/pw/last-screen.txt").read_text()
    assert files_holding(tmp_path, "hunter2") == []
    if as_json:
        assert json.loads(p.stdout)["storage"].endswith("password=***")
    # nothing the study keeps names it either (user attrs of the study and of its trials)
    import optuna
    st = optuna.load_study(study_name="pw", storage=f"sqlite:///{tmp_path}/s.db")
    assert "hunter2" not in json.dumps(st.user_attrs, default=str)
    assert not any("hunter2" in json.dumps(t.user_attrs, default=str) for t in st.get_trials())


def test_postgres_password_forms_never_reach_screen_or_files(tmp_path, monkeypatch):
    """user:pass@ with an `@` and a `:` inside the password: the PostgreSQL URL is what the tune
    header, the start event, the final screen and the summary see; the study itself lives in a
    SQLite file (no server on a CPU test host), reached through open_storage."""
    from typer.testing import CliRunner

    import workbench.tune.storage as storage
    from workbench.cli import app
    secret = "p@ss:w0rd"
    url = f"postgresql://wb:{secret}@db.internal:5432/wb"
    real = storage.open_storage
    monkeypatch.setattr(storage, "open_storage",
                        lambda u: real(f"sqlite:///{tmp_path}/pg.db") if u == url else real(u))
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path))
    for extra in ([], ["--json"]):
        r = CliRunner().invoke(app, [*BASE, "--space", str(SPACE), "--trials", "4", "--study", "pg", "--storage", url,
                                     *extra])
        assert r.exit_code == 0, r.output[-3000:]
        out = r.output                                    # stdout and stderr, as a terminal shows them
        for s in (secret, "w0rd", "p@ss"):
            assert s not in out
            assert files_holding(tmp_path, s) == []
        assert "postgresql://wb:***@db.internal:5432/wb" in out.replace("\n", "")
    assert "postgresql://wb:***@db.internal:5432/wb" in (tmp_path / "runs/pg/last-screen.txt").read_text()


# ---- 4. one default location per study, found by every command -------------------------------
def test_every_command_finds_a_journal_study_by_default(tmp_path, monkeypatch):
    # two devices, no --storage: the study goes to the default journal file
    p = wb([*BASE, "--space", SPACE, "--trials", "6", "--study", "j", "--devices", "0,1", "--json"], tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    assert (tmp_path / "studies.journal").exists()
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path))
    from workbench.tune.storage import default_storage
    assert json.loads(p.stdout)["storage"] == default_storage(True)
    # each command's own lookup, with no storage given
    from workbench.bench.pickers import tuned_picker
    from workbench.config.profiles import head_shape, load_model
    from workbench.export.package import load_table
    from workbench.ui.inspect import study_rows
    table, prov = load_table("j", default_storage(False))                 # export's default
    assert table.rows and prov["study"] == "j"
    rows = study_rows("study:j", None)                                    # inspect study:
    first = json.loads(p.stdout)
    assert first["trials_run"] == 6                 # measured; repeats are told too, not counted
    assert len([r for r in rows if isinstance(r["trial"], int)]) == first["told"] >= 6
    pick, note = tuned_picker("j", None, head_shape(load_model("llama-3.1-8b"), 1), "bf16", 16, "sm_90a")  # bench --study
    assert "study j" in note and "no graph picks" in note and "refine --graph-len" in note
    # ... and the commands themselves
    p = wb(["inspect", "study:j", "--json"], tmp_path)
    assert p.returncode == 0 and len(json.loads(p.stdout)) >= 6, p.stderr
    p = wb(["export", "--study", "j", "--out", tmp_path / "pkg", "--json"], tmp_path)
    assert p.returncode == 0, p.stderr
    # a later one-device tune of the same name continues the journal study (no second study)
    p = wb([*BASE, "--space", SPACE, "--trials", "2", "--study", "j", "--json"], tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    second = json.loads(p.stdout)
    assert second["trials_run"] == 2
    assert second["complete"] + second["failed"] == first["told"] + second["told"]
    assert len(trials_of(default_storage(True), "j")) == first["told"] + second["told"]
    import optuna
    if (tmp_path / "studies.db").exists():
        assert "j" not in optuna.get_all_study_names(default_storage(False))
    # a name in neither store: one message naming both
    p = wb(["inspect", "study:nope"], tmp_path)
    assert p.returncode == 2 and "no study 'nope'" in p.stderr and "studies.journal" in p.stderr.replace("\n", "")


# ---- 5. an edited space under the same study name --------------------------------------------
def test_resume_with_an_edited_space_says_what_changed(tmp_path):
    st = f"sqlite:///{tmp_path}/studies.db"
    p = wb([*BASE, "--space", SPACE, "--trials", "4", "--study", "e", "--json"], tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    before = trials_of(st, "e")
    edited = tmp_path / "edited.yaml"
    edited.write_text(SPACE.read_text().replace("threads: [128, 256]", "threads: [128, 256, 512]")
                      .replace("prefetch_distance: [0, 1, 2]", "prefetch_distance: [0, 2]"))
    p = wb([*BASE, "--space", edited, "--trials", "4", "--study", "e"], tmp_path)
    text = " ".join(p.stderr.split())
    assert p.returncode == 2, (p.stdout[-2000:], p.stderr[-2000:])
    assert "Traceback" not in p.stderr and "distribution" not in text.lower()
    assert "threads [128, 256] -> [128, 256, 512]" in text and "prefetch_distance [0, 1, 2] -> [0, 2]" in text
    assert "--study" in text                                      # a new study name ...
    stored = tmp_path / "runs/e/space-of-study.yaml"              # ... or the space the study was made with
    assert f"--space {stored}" in p.stderr and stored.exists()                  # one piece, to copy
    after = trials_of(st, "e")
    assert [t.state.name for t in after] == [t.state.name for t in before]
    assert len(after) == len(before)                              # nothing asked ...
    assert not [t for t in after if t.state.name == "RUNNING"]    # ... nothing left RUNNING
    # the same for an edited suite under its old name: its trials would not compare
    suite = tmp_path / "suite.yaml"
    suite.write_text((ROOT / "tuning/suites/default.yaml").read_text().replace("batches: [1, 8, 32, 128]",
                                                                               "batches: [1, 8, 64]"))
    p = wb([*BASE, "--space", SPACE, "--suite", suite, "--trials", "4", "--study", "e"], tmp_path)
    text = " ".join(p.stderr.split())
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr[-2000:]
    assert "another workload suite" in text and "batches [1, 8, 32, 128] -> [1, 8, 64]" in text
    assert len(trials_of(st, "e")) == len(before)
    # the way out it names works
    p = wb([*BASE, "--space", stored, "--trials", "2", "--study", "e", "--json"], tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    assert json.loads(p.stdout)["trials_run"] == 2


# ---- 6. Ctrl-C --------------------------------------------------------------------------------
# A job started in the background (`cmd &` in a script) inherits SIGINT ignored, and the tune then
# leaves it ignored on purpose (tuner.stop_on_sigint): these tests take Ctrl-C as a terminal would
# deliver it, whatever started pytest.
def _sigint_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)       # in the child, before exec: Python then installs its handler


@pytest.fixture
def sigint_delivered():
    prev = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, prev)


def test_ctrl_c_requeues_in_flight_trials_and_the_same_command_resumes(tmp_path):
    st = f"sqlite:///{tmp_path}/studies.db"
    cmd = [sys.executable, "-m", "workbench", *BASE, "--space", str(SPACE), "--trials", "12", "--study", "i",
           "--trials-per-batch", "4", "--json"]
    env = {**os.environ, "WORKBENCH_HOME": str(tmp_path)}
    p = subprocess.Popen([*cmd, "--replay-delay", "0.3"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         preexec_fn=_sigint_default,
                         text=True)
    deadline = time.time() + 120
    while time.time() < deadline:                    # wait until a batch is mid-measurement
        assert p.poll() is None, "the tune ended before it could be interrupted"
        time.sleep(0.1)
        try:
            ts = trials_of(st, "i")
        except Exception:
            continue
        run = [t for t in ts if t.state.name == "RUNNING"]
        # one trial of the batch measured, one being measured, one still to measure (0.3 s each):
        # the signal lands while the batch is in flight, with a trial it cannot finish
        if any(t.state.name in ("COMPLETE", "FAIL") for t in ts) and \
                any("measurement" in t.user_attrs for t in run) and \
                sum("measurement" not in t.user_attrs for t in run) >= 2:
            break
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    text = " ".join(err.split())
    assert p.returncode == 130, (p.returncode, err[-3000:])
    assert "Traceback" not in err
    assert "interrupted" in text and "to resume, run the same command" in text.lower()
    assert "--study i" in text and "--trials 12" in text            # ... which it prints
    s = json.loads(out)
    assert s["interrupted"] is True and 0 < s["trials_run"] < 12
    ts = trials_of(st, "i")
    assert not [t for t in ts if t.state.name == "RUNNING"]
    requeued = [t for t in ts if t.user_attrs.get("failure", "").startswith("interrupted")]
    assert requeued, "the batch in flight was neither finished nor re-queued"
    waiting = {t.user_attrs.get("retry_of") for t in ts if t.state.name == "WAITING"}
    assert {t.number for t in requeued} <= waiting                  # each re-queued with its params
    # the same command resumes: the requested trials run, the re-queued ones first, nothing twice
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads(r.stdout)["trials_run"] == 12
    ts = trials_of(st, "i")
    assert not [t for t in ts if t.state.name in ("RUNNING", "WAITING")]
    by = {t.number: t for t in ts}
    for t in requeued:
        retry = next(x for x in ts if x.user_attrs.get("retry_of") == t.number)
        assert retry.state.name in ("COMPLETE", "FAIL") and retry.params == t.params
    keys = [t.user_attrs["measurement"]["key"] for t in ts
            if t.state.name == "COMPLETE" and "repeat_of" not in t.user_attrs]
    assert len(keys) == len(set(keys)), "a variant was measured twice"
    assert all(by[t.user_attrs["repeat_of"]].user_attrs["measurement"]["key"] == t.user_attrs["measurement"]["key"]
               for t in ts if "repeat_of" in t.user_attrs)


def test_a_variant_is_measured_once_even_when_asked_twice_in_one_batch(tmp_path):
    """Resuming re-asks re-queued parameters beside the sampler's own picks: a variant asked twice in
    one batch is measured once and the other trial reuses it (repeat_of), never measured twice."""
    one = tmp_path / "one.yaml"
    one.write_text("name: one\nknobs:\n  threads: [128]\n  heads_per_cta: [1]\n  partition: [vllm]\n"
                   "  prefetch_distance: [0]\n")
    p = wb([*BASE, "--space", one, "--trials", "4", "--trials-per-batch", "4", "--study", "d", "--json"], tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    s = json.loads(p.stdout)
    # one variant: it is measured once, the repeats are told but not counted against --trials, and
    # the run stops when batches in a row bring nothing new, saying so
    assert s["trials_run"] == 1 and s["repeats"] == s["told"] - 1 >= 3
    assert any("space is exhausted" in n for n in s["notes"]), s["notes"]
    ts = trials_of(f"sqlite:///{tmp_path}/studies.db", "d")
    measured = [t for t in ts if t.state.name == "COMPLETE" and "repeat_of" not in t.user_attrs]
    assert len(measured) == 1 and len(ts) == s["told"] and all(t.state.name == "COMPLETE" for t in ts)


@pytest.mark.parametrize("where, profile", [("recovery", "none"), ("setup", "none"), ("first-batch", "none"),
                                            ("setup", "ncu")])
def test_ctrl_c_while_recovering_a_killed_run_leaves_nothing_running(tmp_path, monkeypatch, where, profile,
                                                                     sigint_delivered):
    """A run killed (-9) mid-batch leaves RUNNING trials, one measured, one not; the next run
    recovers them (finishes the first, re-queues the second). A Ctrl-C that lands while it does --
    during the recovery itself, while the worker starts (before the measured one was finished),
    or in its first batch -- still leaves no trial RUNNING: each is finished or failed with its
    reason and queued again; exit 130, how to resume; and the same command then resumes. With
    --profile ncu the killed run's measurement lacks its profile: the interrupted run re-queues it.
    The SIGINT is real (sent to this process, taken by the tune's own handler in the main thread)."""
    import socket

    from typer.testing import CliRunner

    import workbench.tune.plan as plan
    import workbench.tune.tuner as tuner
    from workbench.cli import app
    from workbench.tune.backend import ReplayBackend
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path))
    st = f"sqlite:///{tmp_path}/studies.db"
    args = [*map(str, BASE), "--space", str(SPACE), "--trials", "4", "--study", "r", "--trials-per-batch", "2",
            "--profile", profile]                 # the last --profile wins over BASE's
    assert CliRunner().invoke(app, args).exit_code == 0
    # the killed run: two trials it asked and never told, owned by a process that is gone
    import optuna
    study = optuna.load_study(study_name="r", storage=st)
    done = [t for t in study.get_trials() if t.state.name == "COMPLETE"]
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = []
    for src, measured in ((done[0], True), (done[1], False)):
        study.enqueue_trial(src.params)
        t = study.ask()
        for k, dist in src.distributions.items():     # as the tuner does right after asking
            t.suggest_categorical(k, dist.choices)
        t.set_user_attr("owner", f"{socket.gethostname()}:{dead.pid}")
        if measured:
            t.set_user_attr("measurement", {**src.user_attrs["measurement"], "ncu": None})   # not profiled yet
        stale.append(t.number)
    assert [t.state.name for t in trials_of(st, "r") if t.number in stale] == ["RUNNING", "RUNNING"]

    def ctrl_c():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.3)                       # the main thread's handler runs meanwhile

    if where == "recovery":
        real = tuner.recover_stale
        monkeypatch.setattr(tuner, "recover_stale", lambda h: (ctrl_c(), real(h))[1])

    class Interrupting(ReplayBackend):
        calls = 0

        def setup(self):
            if where == "setup":
                ctrl_c()

        def measure(self, build):
            Interrupting.calls += 1
            if where == "first-batch" and Interrupting.calls == 1:
                ctrl_c()
            return super().measure(build)
    monkeypatch.setattr(plan, "backend_factory", lambda cfg, replay=None, replay_delay=0.0:
                        (lambda dev: Interrupting(replay, dev)))
    r = CliRunner().invoke(app, args)
    text = " ".join(r.output.split())
    assert r.exit_code == 130, r.output[-3000:]
    assert "Traceback" not in r.output and "to resume, run the same command" in text.lower()
    ts = {t.number: t for t in trials_of(st, "r")}
    assert not [n for n, t in ts.items() if t.state.name == "RUNNING"], [(n, t.user_attrs) for n, t in ts.items()
                                                                          if t.state.name == "RUNNING"]
    for n in stale:                           # finished with its measurement, or failed and queued again
        t = ts[n]
        assert t.state.name == "COMPLETE" or (
            t.state.name == "FAIL" and t.user_attrs["failure"].startswith("interrupted")
            and any(x.user_attrs.get("retry_of") == n for x in ts.values())), (n, t.state.name, t.user_attrs)
    assert ts[stale[1]].state.name == "FAIL"  # never measured: not told as if it were
    assert ts[stale[0]].state.name == ("COMPLETE" if profile == "none" else "FAIL")   # measured: kept unless unprofiled
    # the same command resumes, and leaves nothing behind
    monkeypatch.undo()
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path))
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output[-3000:]
    assert not [t for t in trials_of(st, "r") if t.state.name in ("RUNNING", "WAITING")]
