"""The command line: bad input -> one clear message, exit 2, no traceback."""
import subprocess
import sys

import pytest


def run(*args, cache=None):
    env = None
    if cache:
        import os
        env = {**os.environ, "WORKBENCH_CACHE": cache}
    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True, text=True, env=env)


@pytest.mark.parametrize("args,needle", [
    (["compile", "--space", "/nonexistent.yaml"], "not found"),
    (["compile", "--head-size", "100"], "head_size"),
    (["compile", "--arch", "sm_70"], "sm_80"),
    (["compile", "--dtype", "fp8"], "dtype"),
    (["variant", "warps=4"], "unknown knob"),
    (["variant", "fancy"], "use baseline, paper, simple"),
])
def test_bad_input_exit_2(args, needle):
    r = run(*args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert needle in r.stderr and "Traceback" not in r.stderr + r.stdout


@pytest.mark.parametrize("text,needle", [("knobs:\n  threads: [64\n  x: 1\n", "broken YAML"),
                                         ("knobs:\n  threads: [64, 99]\n", "threads")])
def test_bad_space_file_exit_2(tmp_path, text, needle):
    p = tmp_path / "space.yaml"
    p.write_text(text)
    r = run("compile", "--space", str(p))
    assert r.returncode == 2 and needle in r.stderr and str(p) in r.stderr.replace("\n", "")
    assert "Traceback" not in r.stderr


def test_unknown_option_is_a_usage_error():
    r = run("compile", "--bogus")
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_compile_small_space_json(tmp_path, cubin_cache):
    p = tmp_path / "space.yaml"
    p.write_text("knobs:\n  threads: [128]\n  partition: [vllm]\n  prefetch_distance: [0, 1]\n"
                 "  prefetch_target: [kv]\n")
    r = run("compile", "--space", str(p), "--json", cache=cubin_cache)
    assert r.returncode == 0, r.stderr
    import json
    d = json.loads(r.stdout)
    assert d["built"] + d["cached"] == 2 and d["failed"] == 0 and d["invalid"] == 0
    r2 = run("compile", "--space", str(p), "--json", "--arch", "sm_80", cache=cubin_cache)
    d2 = json.loads(r2.stdout)
    assert d2["invalid"] == 1 and d2["built"] + d2["cached"] == 1
