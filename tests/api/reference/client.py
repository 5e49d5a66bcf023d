"""A copy of the reference project's client script, as it ships (only the base URL is an
argument): it checks GET /health, then sends one image as base64 with line breaks
(`base64.encodebytes`) and a true label, and prints the answer as JSON.

    python client.py BASE_URL IMAGE.png TRUE_LABEL    # TRUE_LABEL: -1 for unknown, or "7"
"""

import base64
import json
import sys

import requests


def main() -> int:
    base_url, path, label = sys.argv[1], sys.argv[2], sys.argv[3]
    try:
        health = requests.get(f"{base_url}/health", timeout=5)
        if health.status_code != 200:
            raise requests.RequestException(health.status_code)
    except requests.RequestException:
        print("Server is not responding")
        return 1
    with open(path, "rb") as f:  # noqa: PTH123 (the reference's code, as it ships)
        image = base64.encodebytes(f.read()).decode("utf-8")  # line breaks every 76 chars
    true_label = int(label) if label.lstrip("-").isdigit() and label.startswith("-") else label
    response = requests.post(
        f"{base_url}/predict", json={"image": image, "true_label": true_label}, timeout=30
    )
    if response.status_code != 200:
        print(f"Error: {response.json().get('error')}")
        return 2
    print(json.dumps(response.json()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
