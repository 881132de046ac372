# flashinfer_vllm_activate.sh [DEST]  -- SOURCE it on the GPU host after scripts/vllm_activate.sh:
#   source scripts/flashinfer_vllm_activate.sh .vllm/flashinfer
# Unpacks scripts/bundle_flashinfer_vllm.sh's FlashInfer 0.6.14 (the release vLLM 0.26.0 pins) into
# $WB_FI_SITE (default /tmp/fi-vllm/site) unless that already holds this bundle (a warm host keeps
# /tmp: later calls need no carry), puts it first on PYTHONPATH (ahead of the peers' 0.7.2 if both are
# there) and keeps FlashInfer's JIT cache in /tmp (FLASHINFER_WORKSPACE_BASE). Returns non-zero when
# neither the bundle nor an unpacked tree is there.
_fi_vllm() {
  local dest=${1:-.vllm/flashinfer} site=${WB_FI_SITE:-/tmp/fi-vllm/site} want have
  if [ -f "$dest/MANIFEST.sha256" ]; then
    (cd "$dest" && sha256sum -c --quiet MANIFEST.sha256) || { echo "[fi-vllm] $dest does not match its MANIFEST" >&2; return 1; }
    want=$(sha256sum "$dest/MANIFEST.sha256" | cut -c1-16); have=$(cat "$site/.bundle-hash" 2>/dev/null || true)
    if [ "$want" != "$have" ]; then
      rm -rf "$site.new" && mkdir -p "$site.new" && xz -dc "$dest/flashinfer.tar.xz" | tar -xf - -C "$site.new" --no-same-owner \
        || { echo "[fi-vllm] unpacking failed" >&2; rm -rf "$site.new"; return 1; }
      echo "$want" > "$site.new/.bundle-hash"; rm -rf "$site" && mv "$site.new" "$site" || return 1
    fi
  elif [ ! -f "$site/.bundle-hash" ]; then
    echo "[fi-vllm] no $dest/MANIFEST.sha256 and nothing in $site: build it (scripts/bundle_flashinfer_vllm.sh) and carry it" >&2
    return 1
  fi
  export PYTHONPATH=$site${PYTHONPATH:+:$PYTHONPATH}
  export FLASHINFER_WORKSPACE_BASE=${FLASHINFER_WORKSPACE_BASE:-/tmp} TVM_FFI_CACHE_DIR=${TVM_FFI_CACHE_DIR:-/tmp/tvm-ffi-cache}
  echo "[fi-vllm] $(python3 -c 'import importlib.metadata as m; print("flashinfer", m.version("flashinfer-python"))' 2>&1 | tail -1) from $site"
}
_fi_vllm "$@"; _fi_rc=$?; unset -f _fi_vllm; return $_fi_rc 2>/dev/null || exit $_fi_rc
