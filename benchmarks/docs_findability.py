"""How fast a newcomer finds three answers: in the documentation site's search, against
reading the README of before the docs site (commit e6386bb) from the top.

For each fixed question the script prints:

- the rank of the first page that holds the answer when the question's words are typed
  into the site's search box. The search is recomputed from ``site/search/search_index.json``
  the way the Material theme's lunr index scores it: BM25 over the ``title`` (boost 1000)
  and ``text`` (boost 1) fields of each section, lunr's separator ``[\\s\\-]+``, English
  stop words dropped, each query word also matching as a prefix (what the search box does
  while typing); sections are grouped by page in the order of their best section, as the
  theme lists results. An approximation of lunr, not the browser itself;
- the line of the old README where the answer first appears (what a reader scrolls to).

It also prints the README's length before and after, the time ``mkdocs build --strict``
takes, and the time ``import edgecls`` takes in the old and the current tree (median of
7 fresh interpreters each).

    python benchmarks/docs_findability.py
"""

from __future__ import annotations

import html
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter, defaultdict
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "e6386bb"  # main before the documentation site: the README held everything

# question -> (what is typed in the search box, regular expression of the answer)
QUESTIONS = {
    "export only TFLite INT8 for a Pi": ("export tflite int8 raspberry pi",
                                         r"export \S+ --target raspberry-pi|--formats tflite --precision int8"),
    "raise the pixel limit": ("raise pixel limit", r"--max-pixels|EDGECLS_MAX_PIXELS"),
    "serve the stream with a token": ("serve stream token", r"EDGECLS_SERVE_TOKEN"),
}
STOP_WORDS = set("a an and are as at be but by for if in into is it no not of on or such that the their then "
                 "there these they this to was will with".split())
SEPARATOR = re.compile(r"[\s\-]+")
BOOST = {"title": 1000.0, "text": 1.0}


def tokens(text: str) -> list[str]:
    plain = html.unescape(re.sub(r"<[^>]+>", " ", text)).lower()
    words = (w.strip(".,:;()[]{}`'\"!?*=/<>|") for w in SEPARATOR.split(plain))
    return [w for w in words if w and w not in STOP_WORDS]


def search(index: list[dict], query: str) -> list[str]:
    """Page locations, best first (pages with no matching section left out)."""
    fields = {name: [Counter(tokens(doc[name])) for doc in index] for name in BOOST}
    mean_length = {name: max(1.0, sum(sum(c.values()) for c in fields[name]) / len(index)) for name in BOOST}
    scores = [0.0] * len(index)
    for term in tokens(query):
        for name, counts in fields.items():
            matches = [sum(n for word, n in c.items() if word.startswith(term)) for c in counts]
            documents = sum(1 for m in matches if m)
            if not documents:
                continue
            idf = math.log(1 + (len(index) - documents + 0.5) / (documents + 0.5))
            for i, tf in enumerate(matches):
                if tf:
                    norm = 1 - 0.75 + 0.75 * sum(counts[i].values()) / mean_length[name]
                    scores[i] += BOOST[name] * idf * tf * 2.2 / (tf + 1.2 * norm)
    best: dict[str, float] = defaultdict(float)
    for doc, score in zip(index, scores):
        if score:
            page = doc["location"].split("#")[0]
            best[page] = max(best[page], score)
    return sorted(best, key=best.get, reverse=True)


def answering_rank(index: list[dict], query: str, answer: str) -> tuple[int | None, str | None, list[str]]:
    """(rank, page) of the first result page holding the answer, and the first three pages."""
    holds = {doc["location"].split("#")[0] for doc in index if re.search(answer, html.unescape(doc["text"]))}
    pages = search(index, query)
    for rank, page in enumerate(pages, 1):
        if page in holds:
            return rank, page, pages[:3]
    return None, None, pages[:3]


def readme_line(text: str, answer: str) -> int | None:
    return next((n for n, line in enumerate(text.splitlines(), 1) if re.search(answer, line)), None)


def build_site(out: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_MKDOCS_2_WARNING": "1"}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(out)],
                   cwd=ROOT, env=env, check=True)
    return time.perf_counter() - started


def import_seconds(tree: Path, runs: int = 7) -> float:
    code = "import time; t = time.perf_counter(); import edgecls; print(time.perf_counter() - t)"
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return statistics.median(float(subprocess.run([sys.executable, "-c", code], env=env, cwd=tree, check=True,
                                                  capture_output=True, text=True).stdout) for _ in range(runs))


def old_tree(where: Path) -> Path:
    archive = subprocess.run(["git", "archive", BEFORE, "edgecls", "README.md"], cwd=ROOT, check=True,
                             capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(where, filter="data")
    return where


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        site_seconds = build_site(Path(tmp) / "site")
        index = json.loads((Path(tmp) / "site" / "search" / "search_index.json").read_text())["docs"]
        old = old_tree(Path(tmp) / "old")
        old_readme = (old / "README.md").read_text()
        new_readme = (ROOT / "README.md").read_text()
        print(f"{'question':34} {'typed in search':32} {'docs rank (page)':24} {'README line':12} first 3 pages")
        for question, (query, answer) in QUESTIONS.items():
            rank, page, top = answering_rank(index, query, answer)
            print(f"{question:34} {query:32} {f'{rank} ({page})':24} {readme_line(old_readme, answer)!s:12} "
                  f"{', '.join(top)}")
        print(f"\nREADME: {len(old_readme.splitlines())} lines at {BEFORE}, {len(new_readme.splitlines())} now")
        print(f"docs: {len(index)} sections; mkdocs build --strict {site_seconds:.1f} s")
        print(f"import edgecls (median of 7): {import_seconds(old) * 1000:.2f} ms at {BEFORE}, "
              f"{import_seconds(ROOT) * 1000:.2f} ms now")


if __name__ == "__main__":
    main()
