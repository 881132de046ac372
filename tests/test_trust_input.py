"""Issue 14, "Secrets and bad input" (the parts that need no tuning run): storage passwords are
masked in every form, `workbench doctor` is not "Ready" without what the main job needs, a missing
optuna is one clear message, and bad arguments are one clear message each (exit 2, no
traceback). Tuning runs (a password URL through `tune`, the default study location, an edited
space, Ctrl-C) are in test_trust_tune.py."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REPLAY = ROOT / "tests/fixtures/h100-2026-11-21/replay.json"
SPACE = ROOT / "tests/fixtures/replay-space.yaml"
DB = ROOT / "tests/fixtures/h100-2026-11-21/studies.db"
STUDY = "h100-llama-3.1-8b-tp1-bf16-blk16-default"


def wb(args, home, *, pre="", timeout=300):
    """`workbench ARGS` in a fresh interpreter; `pre`: Python run first (e.g. hide a module)."""
    env = {**os.environ, "WORKBENCH_HOME": str(home),
           "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    code = f"import sys\n{pre}\nfrom workbench.cli import main\nsys.argv = ['workbench', *sys.argv[1:]]\nmain()\n"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=home)      # (a command that got through writes under home)


def one_clear_error(p, needle):
    text = " ".join((p.stderr + p.stdout).split())
    assert p.returncode == 2, (p.returncode, p.stdout[-2000:], p.stderr[-2000:])
    assert "Traceback" not in p.stderr + p.stdout, p.stderr[-3000:]
    assert needle in text, text[-2000:]
    return text


# ---- 1. storage passwords --------------------------------------------------------------------
@pytest.mark.parametrize("url, masked, secret", [
    ("postgresql://wb:hunter2@db.example:5432/wb", "postgresql://wb:***@db.example:5432/wb", "hunter2"),
    ("postgresql://u:p@ss@db.example/wb", "postgresql://u:***@db.example/wb", "p@ss"),
    ("postgresql+psycopg://u:s3:cr/t@db/wb", "postgresql+psycopg://u:***@db/wb", "s3:cr/t"),
    ("mysql://root:hunter2@localhost/db", "mysql://root:***@localhost/db", "hunter2"),
    ("postgresql://wb@db/wb?password=hunter2", "postgresql://wb@db/wb?password=***", "hunter2"),
    ("postgresql://db/wb?sslmode=require&password=hunter2&application_name=wb",
     "postgresql://db/wb?sslmode=require&password=***&application_name=wb", "hunter2"),
    ("postgresql://db/wb?PASSWORD=hunter2", "postgresql://db/wb?PASSWORD=***", "hunter2"),
    ("sqlite:////tmp/s.db?password=hunter2", "sqlite:////tmp/s.db?password=***", "hunter2"),
])
def test_mask_url_hides_every_password_form(url, masked, secret):
    from workbench.tune.storage import mask_url
    assert mask_url(url) == masked
    assert secret not in mask_url(url)
    # ... also inside a driver's message that quotes the URL
    said = mask_url(f"cannot connect to {url} (timeout)")
    assert secret not in said and said == f"cannot connect to {masked} (timeout)"


@pytest.mark.parametrize("url", ["sqlite:////home/me/.local/share/workbench/studies.db",
                                 "sqlite:////srv/me@corp/studies.db", "journal:////tmp/studies.journal",
                                 "/tmp/studies.journal", "postgresql://wb@db:5432/wb",
                                 "postgresql://db/wb?sslmode=require", "no URL here: a plain message"])
def test_mask_url_leaves_urls_without_a_password(url):
    from workbench.tune.storage import mask_url
    assert mask_url(url) == url


def test_cli_masks_any_error_message(monkeypatch, capsys):
    """The boundary (`error: …`) masks whatever URL a message quotes, whoever raised it."""
    import importlib

    from workbench.errors import WorkbenchError
    app_mod = importlib.import_module("workbench.cli.app")

    def boom():
        raise WorkbenchError("storage postgresql://wb:hunter2@db/wb: something went wrong")
    monkeypatch.setattr(app_mod, "app", boom)
    with pytest.raises(SystemExit) as e:
        app_mod.main()
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "hunter2" not in err and "postgresql://wb:***@db/wb" in " ".join(err.split())


# ---- 2. doctor's verdict and a missing optuna ------------------------------------------------
HIDE_OPTUNA = "sys.modules['optuna'] = None   # as on a host where optuna is not installed"


def _host_with_everything_but(monkeypatch, missing):
    """Doctor on a host whose GPU, nvcc, torch ... are fine, except the modules/tools in `missing`."""
    from workbench import doctor
    from workbench.errors import WorkbenchError
    ok = lambda name: (lambda *a: doctor.Check(name, "ok", "fine", required=True))  # noqa: E731
    monkeypatch.setattr(doctor, "_gpu", ok("GPU"))
    monkeypatch.setattr(doctor, "_nvcc", ok("nvcc"))
    monkeypatch.setattr(doctor, "_nsys", lambda probe: doctor.Check("nsys", "ok", "fine"))
    monkeypatch.setattr(doctor, "_vllm_source", lambda: doctor.Check("vLLM kernel source", "ok", "fine"))
    real = doctor._module

    def module(name, pip, required=False):
        if name in missing:
            return real(name, pip, required)
        return doctor.Check(name, "ok", "fine", required=required)
    monkeypatch.setattr(doctor, "_module", module)
    for m in missing:
        if m != "ncu":
            monkeypatch.setitem(sys.modules, m, None)
    import workbench.measure.ncu as ncu
    if "ncu" in missing:
        def no_ncu():
            raise WorkbenchError("ncu not found")
        monkeypatch.setattr(ncu, "find_ncu", no_ncu)
    else:
        monkeypatch.setattr(ncu, "find_ncu", lambda: "/usr/local/cuda/bin/ncu")
        monkeypatch.setattr(ncu, "ncu_version", lambda n: "2025.3")


def _doctor_cli():
    from typer.testing import CliRunner

    from workbench.cli import app
    return CliRunner().invoke(app, ["doctor", "--no-probe"])


def test_doctor_ready_when_everything_is_there(monkeypatch):
    from workbench.doctor import main_job_ready, run_checks
    _host_with_everything_but(monkeypatch, [])
    assert main_job_ready(run_checks(probe_profilers=False))
    r = _doctor_cli()
    assert r.exit_code == 0 and "Ready." in r.output


@pytest.mark.parametrize("missing", [["optuna"], ["ncu"], ["optuna", "ncu"]])
def test_doctor_not_ready_without_optuna_or_ncu(monkeypatch, missing):
    from workbench.doctor import main_job_ready, run_checks
    _host_with_everything_but(monkeypatch, missing)
    checks = run_checks(probe_profilers=False)
    assert not main_job_ready(checks)
    bad = {c.name for c in checks if c.required and c.status != "ok"}
    assert bad == set(missing)
    r = _doctor_cli()
    text = " ".join(r.output.split())
    assert r.exit_code == 1 and "Ready." not in text and "cannot run here" in text
    for m in missing:
        assert m in text.split("cannot run here", 1)[1], text      # the verdict names what is missing
    if "ncu" in missing:
        assert "--profile none" in text                            # ... and the way round it


def test_tune_without_optuna_is_one_clear_message(tmp_path):
    p = wb(["tune", "--gpu", "h100", "--model", "llama-3.1-8b", "--replay", REPLAY, "--space", SPACE,
            "--trials", "2", "--profile", "none"], tmp_path, pre=HIDE_OPTUNA)
    text = one_clear_error(p, "optuna is not installed")
    assert "pip install optuna" in text


def test_inspect_and_export_study_without_optuna_are_one_clear_message(tmp_path):
    db = tmp_path / "studies.db"
    shutil.copy(DB, db)
    p = wb(["inspect", f"study:{STUDY}", "--storage", f"sqlite:///{db}"], tmp_path, pre=HIDE_OPTUNA)
    assert "pip install optuna" in one_clear_error(p, "optuna is not installed")
    p = wb(["export", "--study", STUDY, "--storage", f"sqlite:///{db}", "--out", tmp_path / "o"], tmp_path,
           pre=HIDE_OPTUNA)
    assert "pip install optuna" in one_clear_error(p, "optuna is not installed")


# ---- 3. bad input ----------------------------------------------------------------------------
TUNE = ["tune", "--gpu", "h100", "--model", "llama-3.1-8b", "--replay", REPLAY, "--space", SPACE, "--profile", "none"]


@pytest.mark.parametrize("args, needle", [
    (["variant", "threads=128,"], "empty knob=value pair"),
    (["variant", "threads=128,,partition=512"], "empty knob=value pair"),
    (["variant", "threads=128,partition"], "'partition' is not knob=value"),
    (["variant", "=128"], "no knob name"),
    (["variant", "threads="], "no value for threads"),
    (["variant", "threads=128,threads=256"], "threads given twice"),
    (["variant", "threads=128,warps=4"], "unknown knob(s) warps"),
    (["variant", "threads=100"], "threads: 100 is not supported"),
    (["variant", "threads=many"], "threads: expected an integer, got 'many'"),
    ([*TUNE, "--trials-per-batch", "0"], "--trials-per-batch must be >= 1"),
    ([*TUNE, "--trials", "0"], "--trials must be >= 1"),
    ([*TUNE, "--trial-timeout", "0"], "--trial-timeout must be > 0"),
    ([*TUNE, "--trial-timeout", "-5"], "--trial-timeout must be > 0"),
    (["worker", "--study", "x", "--storage", "sqlite:///{home}/s.db", "--replay", REPLAY, "--trials-per-batch", "0"],
     "--trials-per-batch must be >= 1"),
    (["worker", "--study", "x", "--storage", "sqlite:///{home}/s.db", "--replay", REPLAY, "--trials", "0"],
     "--trials must be >= 1"),
    (["worker", "--study", "x", "--storage", "sqlite:///{home}/s.db", "--replay", REPLAY, "--trial-timeout", "0"],
     "--trial-timeout must be > 0"),
    (["compile", "--group", "0"], "--group must be >= 1"),
    (["compile", "--group", "-2"], "--group must be >= 1"),
    (["compile", "--jobs", "0"], "--jobs must be >= 1"),
    (["measure", "--variants", "threads=256,partition=512"], "--variant threads=256,partition=512"),
    (["measure", "--variants", "threads=256;partition=512"], "--variant threads=256,partition=512"),
    (["measure", "--variants", "simple,threads=256"], "--variant threads=256"),
    (["measure", "--variant", "threads=256,"], "empty knob=value pair"),
    (["measure", "--variants", "simple,,paper"], "empty variant name"),
    (["measure", "--variants", "fancy"], "unknown named variant 'fancy'"),
])
def test_bad_input_is_one_clear_message(tmp_path, args, needle):
    args = [str(a).replace("{home}", str(tmp_path)) for a in args]
    one_clear_error(wb(args, tmp_path), needle)
    if args[0] == "tune":                         # refused before the study was touched
        assert not (tmp_path / "studies.db").exists()


def test_measure_variant_syntax_is_unambiguous():
    """--variants: named variants, by commas; --variant (repeatable): one variant, knobs by commas --
    the same form as `workbench variant`."""
    from workbench.cli.measure_cmds import parse_variants
    shape = {"head_size": 128, "block_size": 16, "dtype": "bf16"}
    vs = parse_variants(None, ["threads=256,partition=512"], shape)
    assert len(vs) == 1 and (vs[0].threads, vs[0].partition) == (256, 512)
    vs = parse_variants("baseline,paper", ["threads=256", "simple"], shape)
    assert [v.label for v in vs][:2] == ["baseline", "paper"] and len(vs) == 4 and vs[2].threads == 256
    assert [v.label for v in parse_variants(None, None, shape)] == ["baseline", "paper"]      # the default
    from workbench.kernel.variant import parse_knobs
    assert parse_knobs(" threads = 256 , partition=none ") == {"threads": "256", "partition": "none"}


def test_measure_help_shows_the_syntax():
    from typer.testing import CliRunner

    from workbench.cli import app
    r = CliRunner().invoke(app, ["measure", "--help"], env={"COLUMNS": "200"})
    text = " ".join(r.output.split())
    assert "--variant" in text and "repeat" in text and "threads=256,partition=512" in text


@pytest.fixture(scope="module")
def study_db(tmp_path_factory):
    d = tmp_path_factory.mktemp("exportname")
    shutil.copy(DB, d / "studies.db")
    return d


@pytest.mark.parametrize("name, needle", [
    ("os", "'os' would shadow the Python standard library module os"),
    ("json", "would shadow the Python standard library module json"),
    ("optuna", "would shadow the installed package optuna"),
    ("torch", "would shadow the installed package torch"),
    ("workbench", "would shadow the installed package workbench"),
    ("class", "a Python keyword"),
    ("My-Pkg", "lower-case letters, digits and _"),
    ("1abc", "lower-case letters, digits and _"),
])
def test_export_name_must_not_shadow(study_db, name, needle):
    out = study_db / f"o-{name}"
    p = wb(["export", "--study", STUDY, "--storage", f"sqlite:///{study_db}/studies.db", "--out", out, "--name", name],
           study_db)
    one_clear_error(p, needle)
    assert not (out / name).exists()


def test_export_name_may_be_a_previous_export(study_db, monkeypatch):
    """A name an earlier export installed (its package holds dispatch.json) is not a shadow."""
    from workbench.export.package import _check_name
    prev = study_db / "site" / "wb_prev_export"
    prev.mkdir(parents=True)
    (prev / "__init__.py").write_text("")
    (prev / "dispatch.json").write_text("{}")
    monkeypatch.syspath_prepend(str(study_db / "site"))
    assert _check_name("wb_prev_export") == "wb_prev_export"
    assert _check_name("wb_h100_llama_3_1_8b") == "wb_h100_llama_3_1_8b"     # not installed at all
