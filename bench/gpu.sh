#!/usr/bin/env bash
# Training on a GPU, one command, at most 5 minutes: the recipes through bench/train.py
# (reference, plain and fast over three seeds with the GPU's busy share and host syncs;
# best over one; fast with torch.compile / CUDA graphs / non-deterministic cuDNN beside it)
# and the whole `digitlab train --recipe fast` command, timed, with its phases.
#
#   bench/gpu.sh [DIR]                  # figures into DIR (default: $OUT, else bench/gpu-out)
#   bench/gpu.sh --fetch-wheels [DIR]   # here, with a package registry: the wheels a bare
#                                       # GPU machine lacks, into DIR (default .whl)
#
# Runs on a bare machine with this repository, a python3 that has CUDA torch, and no
# network: the code runs from src/ (PYTHONPATH), the packages the image lacks come from
# the wheels in $DIGITLAB_WHEELS (default .whl) when present, else `pip install -e .` in a
# venv that sees the system's torch (needs a registry). MNIST comes from $DIGITLAB_DATA_DIR,
# else .mnist/ or shared/mnist/ in the checkout (copy the four .gz files there first).
# Each step has its own time limit, so one slow step cannot take the others' figures.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
WHEELS=${DIGITLAB_WHEELS:-$ROOT/.whl}
# What digitlab needs beyond the GPU image's packages (pydantic, SQLAlchemy, Alembic, ...),
# at the versions the project's CPU environment runs.
MISSING="pydantic==2.14.4 pydantic_core==2.50.5 pydantic-settings==2.16.3 python-dotenv==1.2.4
annotated-types==0.8.0 typing-inspection==0.4.5 sqlalchemy==2.1.9 greenlet==3.5.6
alembic==1.20.1 mako==1.4.3 psycopg==3.3.9 psycopg-binary==3.3.9"

if [ "${1:-}" = --fetch-wheels ]; then
    dest=${2:-$ROOT/.whl}
    # The GPU image's python is 3.12 on x86-64 (/work/.library/device/KINDS.md).
    # shellcheck disable=SC2086
    exec "$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform any -d "$dest" $MISSING
fi

OUTDIR=${1:-${OUT:-$ROOT/bench/gpu-out}}
mkdir -p "$OUTDIR"
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
started=$(date +%s)
log() { echo "[gpu.sh +$(($(date +%s) - started)) s] $*" | tee -a "$OUTDIR/gpu.log"; }

if ! "$PY" -c "import digitlab.cli.main, digitlab.ml.pipeline" 2>/dev/null; then
    if ls "$WHEELS"/*.whl >/dev/null 2>&1; then
        log "installing $(ls "$WHEELS"/*.whl | wc -l) wheels from $WHEELS"
        "$PY" -m pip install -q --no-index --no-deps --no-compile --target /tmp/digitlab-site \
            "$WHEELS"/*.whl || exit 1
        export PYTHONPATH="$PYTHONPATH:/tmp/digitlab-site"
    else
        log "no wheels in $WHEELS: a venv over the system's torch, pip install -e ."
        "$PY" -m venv --system-site-packages /tmp/digitlab-venv || exit 1
        /tmp/digitlab-venv/bin/pip install -q -e "$ROOT" || exit 1
        PY=/tmp/digitlab-venv/bin/python
    fi
fi
if [ -z "${DIGITLAB_DATA_DIR:-}" ]; then
    for dir in "$ROOT/.mnist" "$ROOT/shared/mnist" "$HOME/.cache/digitlab/mnist"; do
        [ -f "$dir/train-images-idx3-ubyte.gz" ] && export DIGITLAB_DATA_DIR=$dir && break
    done
fi
[ -n "${DIGITLAB_DATA_DIR:-}" ] || { log "no MNIST files: set DIGITLAB_DATA_DIR"; exit 1; }
"$PY" -c "import torch, sys; sys.exit(not torch.cuda.is_available())" ||
    { log "torch sees no CUDA device"; exit 1; }

{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
  nproc; } > "$OUTDIR/machine.txt" 2>&1
log "machine: $(tr '\n' ' ' < "$OUTDIR/machine.txt")"

bench() {  # bench LIMIT_S NAME ARGS...: one bench/train.py run, its table and JSON in OUTDIR
    local limit=$1 name=$2
    shift 2
    log "bench/train.py $* (limit ${limit} s)"
    timeout "$limit" "$PY" bench/train.py "$@" --json "$OUTDIR/$name.json" \
        2>&1 | tee "$OUTDIR/$name.txt"
    local rc=${PIPESTATUS[0]}
    [ "$rc" = 0 ] || log "$name: exit $rc (124: cut at ${limit} s; its JSON has what it measured)"
}

bench 90 recipes --recipes reference,plain,fast --seeds 0,1,2 --busy --syncs
bench 65 best --recipes best --seeds 0 --busy
bench 70 variants --seeds 0 --recipes \
    fast,fast+compile=default,fast+compile=reduce-overhead,fast+deterministic=false

log "digitlab train --recipe fast, the whole command"
work=$(mktemp -d)
export DIGITLAB_MODEL_DIR=$work/models DIGITLAB_DATABASE_URL=sqlite:///$work/digitlab.db
t0=$EPOCHREALTIME
timeout 40 "$PY" -m digitlab train --recipe fast > "$OUTDIR/command.txt" 2>&1
rc=$?
seconds=$(awk "BEGIN { printf \"%.2f\", $EPOCHREALTIME - $t0 }")
log "whole command: ${seconds} s wall, exit $rc"
"$PY" - "$work/models" "$seconds" > "$OUTDIR/command.json" <<'EOF'
import json, sys
from pathlib import Path
cards = sorted(Path(sys.argv[1]).glob("*/model.json"))
card = json.loads(cards[-1].read_text()) if cards else {}
m = card.get("metrics", {})
print(json.dumps({"wall_seconds": float(sys.argv[2]), "train_seconds": m.get("train_seconds"),
                  "test_accuracy": m.get("test_accuracy"), "phases": m.get("phase_seconds"),
                  "batch_size": card.get("config", {}).get("batch_size")}, indent=2))
EOF
cat "$OUTDIR/command.json" | tee -a "$OUTDIR/gpu.log"
rm -rf "$work"
log "done; figures in $OUTDIR"
