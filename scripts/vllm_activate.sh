# vllm_activate.sh [DEST]   -- SOURCE it on the offline GPU host:  source scripts/vllm_activate.sh .vllm
#
# Installs the vLLM 0.26.0 bundle made by scripts/bundle_vllm.sh into $WB_VLLM_SITE (default
# /tmp/vllm-site) from whatever parts DEST/part1, DEST/part2, ... are present, and, once every part
# has arrived, sets up this shell for offline vLLM. Needs only python3 (stdlib: lzma, tarfile).
#   - The parts come in back-to-back `device` calls on one warm host (it keeps /tmp): each call
#     unpacks what it brings (checked against the MANIFEST's sha256) and remembers it; pieces of the
#     split extension wait in $WB_VLLM_SITE/.pieces until all have arrived. Re-sourcing is harmless.
#   - Until the install is complete it lists the parts still missing, sets nothing, and returns 3
#     (use `|| true` in the calls that only bring a part). A bundle with another MANIFEST replaces
#     what $WB_VLLM_SITE held. After the last part, every file in every RECORD of the tree is checked
#     once (sha256) before the tree is marked complete; a complete tree needs no DEST at all.
#   - Exports: PYTHONPATH=$WB_VLLM_SITE/site:..., VLLM_HOST_IP=127.0.0.1 (single node; skips the
#     route probe), VLLM_NO_USAGE_STATS=1, DO_NOT_TRACK=1, HF_HUB_OFFLINE=1, TRANSFORMERS_OFFLINE=1,
#     and VLLM_USE_FLASHINFER_SAMPLER=0 unless `flashinfer` is importable (the peers bundle,
#     scripts/peers_activate.sh, brings FlashInfer 0.7.2.post1; vLLM 0.26.0 was built against 0.6.14,
#     so set VLLM_USE_FLASHINFER_SAMPLER=0 yourself if its sampler misbehaves). Values already set
#     in the environment are kept.
#   - The real vllm package always wins over the peers bundle's FA3-only `vllm` (a namespace
#     package without __init__.py), whatever the order of the two activations.
#
# Example with the `device` tool (carry paths are relative to the repo root; see
# docs/offline-bundles.md):
#   run(command="source scripts/vllm_activate.sh .vllm || true", carry=[".vllm/part1"])
#   run(command="source scripts/vllm_activate.sh .vllm && python3 e2e.py", carry=[".vllm/part2"])
# Your own out-of-tree backend's dist-info must be on the same PYTHONPATH for its
# vllm.general_plugins entry point to be found (pip install --no-deps --target DIR .).

_vllm_activate() {
  local dest=${1:-.vllm} site=${WB_VLLM_SITE:-/tmp/vllm-site} py
  py=$(command -v python3 || command -v python) || { echo "vllm_activate: no python3" >&2; return 1; }
  "$py" - "$dest" "$site" <<'PY' || return $?
import base64, csv, glob, hashlib, lzma, os, shutil, sys, tarfile
dest, site = sys.argv[1], sys.argv[2]
tree = os.path.join(site, "site")
state = os.path.join(site, ".state")
def say(*a): print("[vllm]", *a, flush=True)
def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""): h.update(b)
    return h.hexdigest()

def load(man_path):
    items, files = {}, []
    for line in open(man_path):
        f = line.rstrip("\n").split("\t")
        if f[0] == "item": items[f[1]] = {"kind": f[2], "target": f[3], "sha": f[4]}
        elif f[0] == "file": files.append({"part": f[1], "name": f[2], "item": f[3], "sha": f[4], "bytes": int(f[5])})
    return items, files

mans = sorted(glob.glob(os.path.join(dest, "part*", "MANIFEST")))
texts = {open(m, "rb").read() for m in mans}
if len(texts) > 1:
    sys.exit(f"vllm_activate: the parts under {dest} come from different bundles (MANIFESTs differ); rebuild/resend")
bundle_id = hashlib.sha256(texts.pop()).hexdigest() if mans else None
have_id = open(os.path.join(site, ".bundle-id")).read().strip() if os.path.exists(os.path.join(site, ".bundle-id")) else None
if bundle_id is None:
    if have_id and os.path.exists(os.path.join(site, ".complete")):
        say(f"no parts under {dest}; using the complete install in {site} ({have_id[:12]})"); sys.exit(0)
    msg = f"vllm_activate: no parts under {dest} and no complete install in {site}."
    if have_id:
        items, files = load(os.path.join(site, "MANIFEST"))
        done = set(os.listdir(state)) if os.path.isdir(state) else set()
        miss = sorted({f["part"] for f in files if f["name"] not in done})
        msg += f" Still missing: {', '.join(miss)} (carry them: {', '.join(f'{dest}/{p}' for p in miss)})."
    sys.exit(msg)
if have_id != bundle_id:
    if have_id: say(f"{site} holds another bundle ({have_id[:12]}); replacing it")
    shutil.rmtree(site, ignore_errors=True)
    os.makedirs(state); os.makedirs(tree); os.makedirs(os.path.join(site, ".pieces"))
    shutil.copy(mans[0], os.path.join(site, "MANIFEST"))
    open(os.path.join(site, ".bundle-id"), "w").write(bundle_id + "\n")
if os.path.exists(os.path.join(site, ".complete")):
    say(f"{site} already holds the complete bundle ({bundle_id[:12]})"); sys.exit(0)
items, files = load(os.path.join(site, "MANIFEST"))
done = set(os.listdir(state))
def mark(name): open(os.path.join(state, name), "w").close(); done.add(name)

def install(item, src_files):
    """Install ITEM from its file(s) (one whole archive, or the ordered pieces of an xz stream)."""
    it = items[item]
    if it["kind"] == "tar":
        with tarfile.open(src_files[0], "r:xz") as t:
            kw = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            t.extractall(tree, **kw)
    elif it["kind"] == "xz":
        out = os.path.join(tree, it["target"]); os.makedirs(os.path.dirname(out), exist_ok=True)
        class Cat:                                          # the pieces as one stream
            def __init__(s, paths): s.fs = [open(p, "rb") for p in paths]
            def read(s, n=-1):
                while s.fs:
                    b = s.fs[0].read(n if n and n > 0 else 1 << 20)
                    if b: return b
                    s.fs.pop(0).close()
                return b""
        with lzma.open(Cat(src_files)) as src, open(out + ".tmp", "wb") as g:
            shutil.copyfileobj(src, g, 1 << 20)
        if it["sha"] != "-" and sha(out + ".tmp") != it["sha"]:
            os.remove(out + ".tmp"); sys.exit(f"vllm_activate: {it['target']} assembled from pieces has a wrong sha256")
        os.chmod(out + ".tmp", 0o755); os.replace(out + ".tmp", out)
    mark("item:" + item)

present = sorted({os.path.basename(os.path.dirname(m)) for m in mans})
for f in files:                                          # 1. take in what this call brought
    if f["name"] in done or f["part"] not in present: continue
    p = os.path.join(dest, f["part"], f["name"])
    if not os.path.exists(p) or os.path.getsize(p) != f["bytes"] or sha(p) != f["sha"]:
        sys.exit(f"vllm_activate: {p} is missing or damaged (sha256/size differ from the MANIFEST); resend {f['part']}")
    whole = sum(1 for g in files if g["item"] == f["item"]) == 1
    if whole:
        say(f"unpacking {f['part']}/{f['name']}"); install(f["item"], [p])
    else:
        shutil.copy(p, os.path.join(site, ".pieces", f["name"]))
        say(f"kept piece {f['part']}/{f['name']} until the others arrive")
    mark(f["name"])
for item in items:                                       # 2. assemble split items that are whole now
    pieces = [f for f in files if f["item"] == item]
    if "item:" + item in done or len(pieces) < 2 or not all(f["name"] in done for f in pieces): continue
    say(f"assembling {item} from {len(pieces)} pieces")
    install(item, [os.path.join(site, ".pieces", f["name"]) for f in pieces])
    for f in pieces: os.remove(os.path.join(site, ".pieces", f["name"]))
missing = sorted({f["part"] for f in files if f["name"] not in done})
if missing:
    got = sorted({f["part"] for f in files if f["name"] in done})
    print(f"[vllm] INCOMPLETE: have {', '.join(got) or 'nothing'}; still missing {', '.join(missing)}. "
          f"Send them in the next calls on this warm host: carry=[\"{dest}/{missing[0]}\"], then source this again.",
          flush=True)
    sys.exit(3)
bad = n = 0                                              # 3. verify every RECORD once
for rec in glob.glob(os.path.join(tree, "*.dist-info", "RECORD")):
    for row in csv.reader(open(rec)):
        if len(row) < 2 or not row[1]: continue
        n += 1
        p = os.path.join(tree, row[0])
        algo, digest = row[1].split("=", 1)
        if not os.path.exists(p): print("MISSING", row[0]); bad += 1; continue
        h = hashlib.new(algo)
        with open(p, "rb") as fh:
            for b in iter(lambda: fh.read(1 << 20), b""): h.update(b)
        if base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode() != digest:
            print("HASH MISMATCH", row[0]); bad += 1
if bad:
    sys.exit(f"vllm_activate: {bad} of {n} files in {tree} fail their RECORD check; remove {site} and resend all parts")
shutil.rmtree(os.path.join(site, ".pieces"), ignore_errors=True)
open(os.path.join(site, ".complete"), "w").write(bundle_id + "\n")
say(f"complete: {n} files checked against their RECORDs in {tree}")
PY
  case ":${PYTHONPATH:-}:" in *":$site/site:"*) ;; *) PYTHONPATH=$site/site${PYTHONPATH:+:$PYTHONPATH} ;; esac
  export PYTHONPATH
  export VLLM_HOST_IP=${VLLM_HOST_IP:-127.0.0.1} VLLM_NO_USAGE_STATS=${VLLM_NO_USAGE_STATS:-1} DO_NOT_TRACK=${DO_NOT_TRACK:-1}
  export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} TRANSFORMERS_OFFLINE=${TRANSFORMERS_OFFLINE:-1}
  if [ -z "${VLLM_USE_FLASHINFER_SAMPLER+x}" ] \
     && ! "$py" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("flashinfer") is None)' 2>/dev/null; then
    export VLLM_USE_FLASHINFER_SAMPLER=0
  fi
  echo "[vllm] ready: PYTHONPATH has $site/site; VLLM_USE_FLASHINFER_SAMPLER=${VLLM_USE_FLASHINFER_SAMPLER-<unset: flashinfer importable>}"
}

(return 0 2>/dev/null) || echo "vllm_activate.sh: source this file (source scripts/vllm_activate.sh .vllm); running it only unpacks" >&2
_vllm_activate "$@"
_vllm_rc=$?
unset -f _vllm_activate
return $_vllm_rc 2>/dev/null || exit $_vllm_rc
