"""Container health check: exit 0 when cpgw-tray's /readyz answers 200, else 1.

Slim images have no curl; this needs only Python. The URL comes from the first argument,
else CPGW_TRAY_HEALTH_URL, else http://127.0.0.1:5001/readyz.
"""

import os
import sys
import urllib.error
import urllib.request

DEFAULT = "http://127.0.0.1:5001/readyz"
url = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("CPGW_TRAY_HEALTH_URL", DEFAULT)
try:
    with urllib.request.urlopen(url, timeout=4) as reply:
        print(reply.read().decode(errors="replace").strip())
        sys.exit(0 if reply.status == 200 else 1)
except urllib.error.HTTPError as exc:  # 503: up, but not ready; the body says why
    print(exc.read().decode(errors="replace").strip())
    sys.exit(1)
except OSError as exc:
    print(f"no answer from {url}: {exc}")
    sys.exit(1)
