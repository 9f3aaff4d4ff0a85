"""Render the app's icons from one master: the tray's "ready" icon drawn at 1024 px.

    python assets/make_icons.py OUT_DIR

writes cpgw-tray.png (256 px, the one the desktop entry uses), cpgw-tray-SIZE.png for
16-512 px, cpgw-tray.ico (Windows, 16-256 px) and cpgw-tray.icns (macOS). The PyInstaller
spec runs this at build time, so the icons always match the tray's drawing.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

PNG_SIZES = (16, 32, 48, 64, 128, 256, 512)
ICO_SIZES = [(n, n) for n in (16, 24, 32, 48, 64, 128, 256)]


def master() -> Image.Image:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    from cpgw_tray.model.status import State
    from cpgw_tray.tray.icons import icon_image

    return icon_image(State.READY, 1024).copy()


def make(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    big = master()
    written = []
    for size in PNG_SIZES:
        path = out / f"cpgw-tray-{size}.png"
        big.resize((size, size), Image.Resampling.LANCZOS).save(path)
        written.append(path)
    big.resize((256, 256), Image.Resampling.LANCZOS).save(out / "cpgw-tray.png")
    big.save(out / "cpgw-tray.ico", sizes=ICO_SIZES)
    big.save(out / "cpgw-tray.icns")
    return [*written, out / "cpgw-tray.png", out / "cpgw-tray.ico", out / "cpgw-tray.icns"]


if __name__ == "__main__":
    for path in make(Path(sys.argv[1] if len(sys.argv) > 1 else "build/icons")):
        print(path)
