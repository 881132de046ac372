#!/usr/bin/env bash
# The working tree a `device` call carries is at most 64 MiB with its carry paths; results/ is ~37 MB
# of it, so the vLLM bundle (two ~41 MB parts) takes eight transfers beside it. Here (not on the
# device): park results/ in .ab/hold (ignored, not carried unless named) except the files a call
# reads, make the calls, then put everything back. Nothing is lost: `out` refuses while results/ has
# uncommitted changes (the tar holds committed files only), `back` restores from the tar.
#   bash scripts/slim_tree.sh out results/…/studies.db.gz results/…/e2e.json.gz   (keep these)
#   bash scripts/slim_tree.sh back
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
HOLD=.ab/hold
case ${1:-} in
out)
  shift
  [ -f $HOLD/results.tar ] && { echo "results/ is already parked in $HOLD (run: back)"; exit 2; }
  [ -z "$(git status --porcelain results)" ] || { echo "results/ has uncommitted changes: commit them first"; exit 2; }
  mkdir -p $HOLD
  keep=$(printf '%s\n' "$@")
  git ls-files results | grep -vxF -e "$keep" > $HOLD/list || true
  tar cf $HOLD/results.tar -T $HOLD/list
  xargs rm -f < $HOLD/list
  find results -type d -empty -delete
  echo "parked $(wc -l < $HOLD/list) files; tree now $(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1) bytes of tracked files present"
  ;;
back)
  [ -f $HOLD/results.tar ] || { echo "nothing parked"; exit 2; }
  tar xf $HOLD/results.tar
  rm -rf $HOLD
  [ -z "$(git status --porcelain results)" ] && echo "results/ restored, clean" || git status --short results | head
  ;;
*) echo "usage: slim_tree.sh out [files to keep...] | back"; exit 2 ;;
esac
