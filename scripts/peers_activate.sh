# peers_activate.sh [DEST]   -- SOURCE it on the offline GPU host:  source scripts/peers_activate.sh .peers
#
# Installs the peers bundle made by scripts/bundle_peers.sh (FA3 from vLLM 0.26.0, FlashInfer
# 0.7.2.post1, apache-tvm-ffi 0.1.11) into $WB_PEERS_SITE (default /tmp/peers-site) and sets up this
# shell. Needs only python3 (xz and sha256sum are used when present). Returns non-zero on error.
#   - DEST/MANIFEST.sha256 is checked; the archives are unpacked only when $WB_PEERS_SITE does not
#     already hold this exact bundle (same manifest hash): a warm host keeps /tmp between calls,
#     so later calls cost nothing, and may even leave .peers out of `carry` (the unpacked tree in
#     /tmp is then used as it is). Unpacking goes to a fresh folder swapped in at the end, so an
#     interrupted unpack never leaves a half tree behind.
#   - PYTHONPATH gets $WB_PEERS_SITE/site (flashinfer, tvm_ffi, their dist-info) and $WB_PEERS_SITE/fa3.
#   - FLASHINFER_WORKSPACE_BASE=/tmp (FlashInfer 0.7.2 JIT-compiles into
#     $FLASHINFER_WORKSPACE_BASE/.cache/flashinfer/<version>/<arch>/cached_ops, so the ~1 min of
#     decode/prefill/XQA builds is paid once per warm host), TVM_FFI_CACHE_DIR=/tmp/tvm-ffi-cache.
#     Values already set in the environment are kept.
#
# How `vllm.vllm_flash_attn` imports without vLLM (the choice made here):
#   vllm/vllm_flash_attn/__init__.py does `from vllm.vllm_flash_attn.flash_attn_interface import ...`
#   and flash_attn_interface.py needs only torch and its sibling `_vllm_fa3_C` at import time
#   (`vllm.platforms` is imported lazily, only by is_fa_version_supported()/
#   fa_version_unsupported_reason(), and `.cute` only for fa_version=4). So $WB_PEERS_SITE/fa3/vllm/
#   deliberately has NO __init__.py: `vllm` is then a PEP 420 namespace package. Python's import
#   system picks a regular package (a directory with __init__.py) over namespace portions wherever
#   each sits on sys.path, so a real vLLM (scripts/vllm_activate.sh, a pip install, a source tree)
#   always wins and its own vllm_flash_attn is used; nothing is stubbed or shadowed, in either
#   activation order. Without a real vLLM, `import vllm` gives that namespace package: it has no
#   __version__ and __file__ is None, so code that must tell a real vLLM apart should test
#   `getattr(vllm, "__file__", None)` or importlib.metadata.version("vllm") (no vllm dist-info here).
#   Do not call is_fa_version_supported() in that mode (it needs vllm.platforms); on an H200 FA3 is
#   the one to use: pass fa_version=3.
#
# Example with the `device` tool:
#   run(command="source scripts/peers_activate.sh .peers && python3 bench_peers.py", carry=[".peers"])

_peers_activate() {
  local dest=${1:-.peers} site=${WB_PEERS_SITE:-/tmp/peers-site} py want have a
  py=$(command -v python3 || command -v python) || { echo "peers_activate: no python3" >&2; return 1; }
  if [ -f "$dest/MANIFEST.sha256" ]; then
    if command -v sha256sum >/dev/null; then
      (cd "$dest" && sha256sum -c --quiet MANIFEST.sha256) \
        || { echo "peers_activate: $dest does not match its MANIFEST.sha256 (transfer damaged? rebuild/carry again)" >&2; return 1; }
    fi
    want=$("$py" -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$dest/MANIFEST.sha256")
    have=$(cat "$site/.bundle-hash" 2>/dev/null || true)
    if [ "$want" = "$have" ]; then
      echo "[peers] $site already holds this bundle (${want:0:12}); not unpacking again"
    else
      echo "[peers] unpacking $dest into $site"
      rm -rf "$site.new" && mkdir -p "$site.new/site" "$site.new/fa3" || return 1
      for a in fa3:fa3 flashinfer:site tvm-ffi:site; do
        _peers_untar "$py" "$dest/${a%%:*}.tar.xz" "$site.new/${a#*:}" \
          || { echo "peers_activate: failed to unpack ${a%%:*}.tar.xz" >&2; rm -rf "$site.new"; return 1; }
      done
      echo "$want" > "$site.new/.bundle-hash"
      rm -rf "$site" && mv "$site.new" "$site" || return 1
    fi
  elif [ -f "$site/.bundle-hash" ]; then
    echo "[peers] no bundle at $dest; using the tree already unpacked in $site ($(cut -c1-12 "$site/.bundle-hash"))"
  else
    echo "peers_activate: no $dest/MANIFEST.sha256 and nothing unpacked in $site." >&2
    echo "  Build it with scripts/bundle_peers.sh and carry it: run(..., carry=[\"$dest\"])" >&2
    return 1
  fi
  if [ -e "$site/fa3/vllm/__init__.py" ]; then   # never let a stub shadow a real vLLM
    echo "peers_activate: $site/fa3/vllm/__init__.py must not exist; remove $site and retry" >&2; return 1
  fi
  # site first (FlashInfer needs tvm-ffi >= 0.1.11 even if another bundle brings an older one),
  # fa3 last: it is a namespace portion and never hides a regular vllm package anyway.
  case ":${PYTHONPATH:-}:" in *":$site/site:"*) ;; *) PYTHONPATH=$site/site${PYTHONPATH:+:$PYTHONPATH} ;; esac
  case ":$PYTHONPATH:" in *":$site/fa3:"*) ;; *) PYTHONPATH=$PYTHONPATH:$site/fa3 ;; esac
  export PYTHONPATH
  export FLASHINFER_WORKSPACE_BASE=${FLASHINFER_WORKSPACE_BASE:-/tmp}
  export TVM_FFI_CACHE_DIR=${TVM_FFI_CACHE_DIR:-/tmp/tvm-ffi-cache}
  echo "[peers] ready: PYTHONPATH has $site/site and $site/fa3; FlashInfer JIT cache in $FLASHINFER_WORKSPACE_BASE/.cache/flashinfer"
}

# _peers_untar PY ARCHIVE DIR: xz + tar when present, else Python's tarfile (lzma is in the stdlib)
_peers_untar() {
  if command -v xz >/dev/null && command -v tar >/dev/null; then
    xz -dc "$2" | tar -xf - -C "$3" --no-same-owner
  else
    "$1" -c 'import sys, tarfile
t = tarfile.open(sys.argv[1], "r:xz")
t.extractall(sys.argv[2], **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))' "$2" "$3"
  fi
}

(return 0 2>/dev/null) || echo "peers_activate.sh: source this file (source scripts/peers_activate.sh .peers); running it sets nothing" >&2
_peers_activate "$@"
_peers_rc=$?
unset -f _peers_activate _peers_untar
return $_peers_rc 2>/dev/null || exit $_peers_rc
