#!/usr/bin/env python
"""Check the built report as a reader sees it: screenshots in headless Chromium, plus static
checks that every image and link of build/report/ resolves.

    python scripts/check_report.py [--report build/report] [--out build/screenshots]
                                   [--width 1280] [--height 16000] [--pages index overview ...]

Needs Debian's chromium (apt-get install -y chromium) and Pillow (a matplotlib dependency).
For each page it writes `<page>.png` (the whole page, trimmed) and `<page>-NN.png` tiles of at
most 1,400 pixels in height, easy to look at one by one; `<page>-narrow.png` is the top of the
page in a 420-pixel-wide window (a phone). Exit status 1 if a static check fails.
Not run in CI: it needs a browser.
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

REPO = Path(__file__).resolve().parent.parent
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--hide-scrollbars",
                  "--disable-dev-shm-usage", "--mute-audio"]


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.links = [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img" and a.get("src"):
            self.images.append(a["src"])
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])


# A table pandas cut for display: a row or column of "..." cells.
CUT_TABLE = re.compile(r"<t[hd][^>]*>\s*(\.\.\.|&hellip;|\u2026)\s*</t[hd]>")


def static_check(page: Path) -> list:
    """Problems with the page's local images and links (missing files, empty images) and
    tables cut for display (pandas' "..." rows or columns)."""
    parser = Links()
    text = page.read_text(errors="replace")
    parser.feed(text)
    problems = [f"{page.name}: a table is cut (a row or column of '...')"] \
        if CUT_TABLE.search(text) else []
    for kind, targets in (("image", parser.images), ("link", parser.links)):
        for target in targets:
            url = urlparse(target)
            if url.scheme in ("http", "https", "mailto", "data") or target.startswith("#"):
                continue
            path = (page.parent / unquote(url.path)).resolve()
            if not path.exists():
                problems.append(f"{page.name}: {kind} {target} does not exist")
            elif kind == "image" and path.stat().st_size < 100:
                problems.append(f"{page.name}: image {target} is (nearly) empty")
    return problems


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    sys.exit("error: chromium not found; apt-get update && apt-get install -y chromium")


def screenshot(browser: str, page: Path, out: Path, width: int, height: int) -> None:
    with tempfile.TemporaryDirectory(prefix="lth-chromium-") as profile:
        cmd = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
               f"--window-size={width},{height}", f"--screenshot={out}",
               "--virtual-time-budget=5000", page.resolve().as_uri()]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    if not out.exists():
        sys.exit(f"error: chromium wrote no screenshot of {page}:\n{result.stderr[-2000:]}")


def trim_and_tile(path: Path, tile: int = 1400) -> list:
    """Cut the empty bottom off a tall screenshot and split it into tiles."""
    from PIL import Image, ImageChops
    img = Image.open(path).convert("RGB")
    # The page ends where the rows stop differing from the bottom row (the window is taller
    # than most pages; what is below the content repeats the last row).
    last = img.crop((0, img.height - 1, img.width, img.height)).resize((img.width, img.height))
    box = ImageChops.difference(img, last).getbbox()
    if box:
        img = img.crop((0, 0, img.width, min(img.height, box[3] + 24)))
    img.save(path)
    tiles = []
    for i, top in enumerate(range(0, img.height, tile)):
        part = path.with_name(f"{path.stem}-{i:02d}.png")
        img.crop((0, top, img.width, min(img.height, top + tile))).save(part)
        tiles.append(part)
    return tiles


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--report", default=str(REPO / "build" / "report"))
    p.add_argument("--out", default=str(REPO / "build" / "screenshots"))
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=16000,
                   help="window height: the part of each page captured")
    p.add_argument("--pages", nargs="*", help="page names without .html (default: all)")
    args = p.parse_args(argv)
    report, out = Path(args.report), Path(args.out)
    if not (report / "index.html").exists():
        sys.exit(f"error: no report at {report}/index.html; run python build.py all first")
    out.mkdir(parents=True, exist_ok=True)
    pages = [report / f"{n}.html" for n in args.pages] if args.pages else \
        sorted(report.glob("*.html"), key=lambda q: (q.stem != "index", q.stem))
    problems = []
    browser = chromium()
    for page in pages:
        problems += static_check(page)
        shot = out / f"{page.stem}.png"
        screenshot(browser, page, shot, args.width, args.height)
        tiles = trim_and_tile(shot)
        narrow = out / f"{page.stem}-narrow.png"
        screenshot(browser, page, narrow, 420, 1800)
        print(f"{page.name}: {shot} ({len(tiles)} tile(s)), {narrow}")
    index = (report / "index.html").read_text()
    for fig in sorted((report / "figures").glob("*.png")):
        if f'src="figures/{fig.name}"' not in index:
            problems.append(f"index.html: figure {fig.name} is not shown")
    if re.search(r"Traceback|NameError|KeyError", index):
        problems.append("index.html mentions a Python error")
    if 'id="claims"' not in index or index.index('id="claims"') > index.index('id="notebooks"'):
        problems.append("index.html does not lead with the claims table")
    for problem in problems:
        print("problem:", problem)
    print("static checks:", "OK" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
