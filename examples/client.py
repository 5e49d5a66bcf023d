"""Send every image in a folder to a running digitlab service and print what it saw.

python examples/client.py DIR [--url http://127.0.0.1:8000] [--token TOKEN]

Standard library only, so it runs anywhere Python does. Each image goes to
`POST /api/v1/predict` as JSON (base64), where it is stored with its prediction; the table
lists the file, the digit, the confidence, the model version and the prediction's id.
Exit 1 when any image was refused (its row says why).
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def predict(url: str, image: bytes, token: str | None = None) -> dict[str, object]:
    """The service's answer for one image; raises ValueError with its `detail` on a 4xx/5xx."""
    body = json.dumps({"image": base64.b64encode(image).decode()}).encode()
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    request = urllib.request.Request(f"{url}/api/v1/predict", body, headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            answer: dict[str, object] = json.load(response)
            return answer
    except urllib.error.HTTPError as exc:
        with exc:
            detail = json.loads(exc.read() or b"{}").get("detail", exc.reason)
        raise ValueError(f"{exc.code}: {detail}") from exc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--token", help="only needed where the service asks for one")
    args = parser.parse_args()

    files = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        print(f"error: no images in {args.folder}", file=sys.stderr)
        return 1
    width = max(len(p.name) for p in files)
    print(f"{'file':<{width}}  digit  confidence  model{' ' * 25}  prediction id")
    failed = 0
    for path in files:
        try:
            answer = predict(args.url.rstrip("/"), path.read_bytes(), args.token)
        except ValueError as exc:
            failed += 1
            print(f"{path.name:<{width}}  refused: {exc}")
            continue
        print(
            f"{path.name:<{width}}  {answer['prediction']:>5}  {answer['confidence']:>10.3f}"
            f"  {answer['model_version']!s:<30}  {answer['prediction_id']}"
        )
    print(f"{len(files) - failed} of {len(files)} images recognised and stored")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
