"""Check every internal link of the built site: its file exists, and so does its #anchor.

    python docs/check_links.py docs/_build/html

Sphinx's own ``linkcheck`` builder reports links inside the site as "unchecked"; this reads
the HTML it wrote instead. Links with a scheme (https:, mailto:, data:...) are skipped: no
network. Exits 1 and lists the broken links if there are any.
"""

from __future__ import annotations

import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ("id", "name"):
            if attrs.get(name):
                self.ids.add(attrs[name])
        for name in ("href", "src"):
            if attrs.get(name) and tag in ("a", "img", "link", "script"):
                self.links.append(attrs[name])


def broken_links(site: Path) -> list[str]:
    pages = {}
    for path in sorted(site.rglob("*.html")):
        page = _Page()
        page.feed(path.read_text(encoding="utf-8"))
        pages[path.resolve()] = page
    problems = []
    for path, page in pages.items():
        for link in page.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc:
                continue
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
            where = f"{path.relative_to(site.resolve())}: {link}"
            if not target.exists():
                problems.append(f"{where} (no file {target.name})")
            elif parts.fragment and target in pages and unquote(parts.fragment) not in (
                pages[target].ids
            ):
                problems.append(f"{where} (no anchor #{parts.fragment})")
    return problems


def main() -> int:
    site = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/_build/html")
    if not (site / "index.html").is_file():
        print(f"{site}: no index.html; build the site first (bash scripts/docs.sh)")
        return 1
    problems = broken_links(site)
    for problem in problems:
        print("broken link:", problem)
    count = sum(1 for _ in site.rglob("*.html"))
    print(f"{count} pages, {len(problems)} broken internal links")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
