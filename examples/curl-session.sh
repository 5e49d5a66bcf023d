#!/usr/bin/env bash
# A session with a running digitlab service through curl: health, a prediction as JSON
# and as an upload, reading it back, a correction, the models.
#
#   examples/curl-session.sh [URL] IMAGE      # URL defaults to http://127.0.0.1:8000
#
# Set DIGITLAB_VIEWER_TOKEN where the service guards its stored data. Every curl fails the
# script on an HTTP error (-f), so a step that goes wrong stops it with a non-zero exit.
set -euo pipefail
if [ $# -eq 1 ]; then set -- http://127.0.0.1:8000 "$1"; fi
URL=${1%/}
IMAGE=$2
AUTH=()
if [ -n "${DIGITLAB_VIEWER_TOKEN:-}" ]; then AUTH=(-H "Authorization: Bearer $DIGITLAB_VIEWER_TOKEN"); fi
field() { python3 -c "import json, sys; print(json.load(sys.stdin)$1)"; }

echo "== is it up, and ready?"
curl -fsS "$URL/healthz"; echo
curl -fsS "$URL/readyz"; echo

echo "== predict, as JSON (base64)"
answer=$(curl -fsS "$URL/api/v1/predict" -H 'content-type: application/json' \
  -d "{\"image\": \"$(base64 -w0 "$IMAGE")\"}")
echo "$answer"
id=$(echo "$answer" | field '["prediction_id"]')
digit=$(echo "$answer" | field '["prediction"]')
input=$(echo "$answer" | field '["input_data_id"]')

echo "== predict, as a multipart upload"
curl -fsS "$URL/api/v1/predict" -F "file=@$IMAGE" | field '["prediction"]'

echo "== read prediction $id back, and the 28x28 image the model saw"
curl -fsS "${AUTH[@]}" "$URL/api/v1/predictions/$id"; echo
curl -fsS "${AUTH[@]}" "$URL/api/v1/inputs/$input/image.png" -o "${TMPDIR:-/tmp}/seen-$input.png"
echo "saved ${TMPDIR:-/tmp}/seen-$input.png"

echo "== correct it (here: say it was $(( (digit + 1) % 10 )))"
curl -fsS "$URL/api/v1/predictions/$id/feedback" -H 'content-type: application/json' \
  -d "{\"label\": $(( (digit + 1) % 10 ))}"; echo

echo "== the models, and the one serving"
curl -fsS "$URL/api/v1/models"; echo
curl -fsS "$URL/api/v1/models/current"; echo
