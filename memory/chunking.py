"""Cut sources into retrievable chunks: code by function/class, papers by section.

Each :class:`Chunk` keeps where it came from (``path`` and a 1-based inclusive
``start``/``end`` span) so a search hit can be opened at the right place.

* **Python code** (``kind="code"``) — parsed with :mod:`ast` (no code graph needed): one
  chunk per function and per method (named ``Class.method``), one per class holding its
  header, docstring and class-level statements (methods elided), one ``<module>`` chunk
  for the module docstring and top-level statements. Each chunk's text starts with
  ``# path:qualified_name`` so names are searchable. A file that does not parse is
  chunked as plain text (and reported by :func:`chunk_file` as such, not hidden).
* **Markdown / LaTeX / plain text** (``kind="paper"`` or ``"note"``) — split at headings
  (``#…`` / ``\\section``…), then windows of at most ``max_chars`` on line boundaries.
* **PDF** — text extracted page by page with ``pypdf``; span = page numbers.
* Overlong chunks are windowed the same way, so no chunk exceeds ``max_chars``.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

from caramba.engine.errors import CarambaError

MAX_CHARS = 3000
CODE_SUFFIXES = frozenset({".py"})
TEXT_SUFFIXES = frozenset({".md", ".markdown", ".rst", ".txt", ".tex"})
PDF_SUFFIXES = frozenset({".pdf"})
_HEADING = re.compile(r"^(#{1,6}\s|\\(part|chapter|section|subsection|subsubsection)\*?\{)")


@dataclass(frozen=True)
class Chunk:
    text: str
    path: str
    start: int
    end: int
    kind: str
    title: str


def _windows(lines: list[str], first_line: int, max_chars: int) -> list[tuple[int, int, str]]:
    """Group ``lines`` into windows of at most ``max_chars`` (a longer line is cut)."""
    out: list[tuple[int, int, str]] = []
    buf: list[str] = []
    start = first_line
    size = 0
    for i, line in enumerate(lines):
        line = line[:max_chars]
        if buf and size + len(line) + 1 > max_chars:
            out.append((start, first_line + i - 1, "\n".join(buf)))
            buf, size, start = [], 0, first_line + i
        buf.append(line)
        size += len(line) + 1
    if buf and "".join(buf).strip():
        out.append((start, first_line + len(lines) - 1, "\n".join(buf)))
    return out


def _emit(chunks: list[Chunk], path: str, kind: str, title: str, lines: list[str],
          start: int, max_chars: int, header: str = "") -> None:
    for s, e, text in _windows(lines, start, max_chars - len(header)):
        if text.strip():
            chunks.append(Chunk(header + text, path, s, e, kind, title))


def chunk_python(path: str, source: str, max_chars: int = MAX_CHARS) -> list[Chunk]:
    """Function/method/class/module chunks of one Python file (raises SyntaxError)."""
    tree = ast.parse(source)
    lines = source.splitlines()
    chunks: list[Chunk] = []
    covered: set[int] = set()

    def span(node: ast.AST) -> tuple[int, int]:
        decos = getattr(node, "decorator_list", [])
        start = min([node.lineno, *(d.lineno for d in decos)])  # type: ignore[attr-defined]
        return start, node.end_lineno or node.lineno  # type: ignore[attr-defined]

    def visit(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                s, e = span(node)
                name = prefix + node.name
                covered.update(range(s, e + 1))
                _emit(chunks, path, "code", name, lines[s - 1:e], s, max_chars, f"# {path}:{name}\n")
            elif isinstance(node, ast.ClassDef):
                s, e = span(node)
                name = prefix + node.name
                methods = [n for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
                skip: set[int] = set()
                for m in methods:
                    ms, me = span(m)
                    skip.update(range(ms, me + 1))
                own = [lines[i - 1] for i in range(s, e + 1) if i not in skip]
                covered.update(range(s, e + 1))
                _emit(chunks, path, "code", name, own, s, max_chars, f"# {path}:{name}\n")
                visit(methods, name + ".")

    visit(tree.body, "")
    rest = [ln if (i + 1) not in covered else "" for i, ln in enumerate(lines)]
    if any(r.strip() for r in rest):
        kept = [r for r in rest if r.strip()]
        _emit(chunks, path, "code", "<module>", kept, 1, max_chars, f"# {path}:<module>\n")
    return chunks


def chunk_text(path: str, text: str, kind: str, max_chars: int = MAX_CHARS) -> list[Chunk]:
    """Heading-delimited sections of Markdown/LaTeX/plain text, windowed."""
    lines = text.splitlines()
    chunks: list[Chunk] = []
    sec_start, title = 0, Path(path).name
    for i, line in enumerate(lines + ["# <end>"]):
        if _HEADING.match(line) or i == len(lines):
            if i > sec_start:
                _emit(chunks, path, kind, title, lines[sec_start:i], sec_start + 1, max_chars)
            sec_start, title = i, line.strip().lstrip("#").strip()[:120] or title
    return chunks


def chunk_pdf(path: str, file: Path, kind: str, max_chars: int = MAX_CHARS) -> list[Chunk]:
    """Page-windowed text of a PDF; span = page numbers (1-based)."""
    import logging

    from pypdf import PdfReader

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # "EOF marker not found"…: we report failures ourselves
    try:
        reader = PdfReader(str(file))
        pages = [(p.extract_text() or "") for p in reader.pages]
    except Exception as e:  # pypdf raises assorted errors (PdfReadError, KeyError, …) on malformed files
        raise CarambaError(f"cannot read PDF {file}: {type(e).__name__}: {e}",
                           fix="check the file is a valid PDF, or remove it from the folder") from None
    chunks: list[Chunk] = []
    for n, page in enumerate(pages, start=1):
        for _, _, text in _windows(page.splitlines(), 1, max_chars):
            if text.strip():
                chunks.append(Chunk(text, path, n, n, kind, f"{Path(path).name} p.{n}"))
    return chunks


def chunk_file(file: Path, path: str, kind: str | None = None,
               max_chars: int = MAX_CHARS) -> tuple[list[Chunk], str | None]:
    """Chunks of one file and a warning (or None). ``kind`` defaults from the suffix:
    ``.py`` → code, text/PDF → paper. A PDF that cannot be read gives no chunks and a
    warning, so one broken download does not stop a folder of papers from being indexed."""
    suffix = file.suffix.lower()
    if suffix in PDF_SUFFIXES:
        try:
            return chunk_pdf(path, file, kind or "paper", max_chars), None
        except CarambaError as e:
            return [], f"{path}: skipped, {e.message} ({e.fix})"
    text = file.read_text(encoding="utf-8", errors="replace")
    if suffix in CODE_SUFFIXES:
        try:
            return chunk_python(path, text, max_chars), None
        except (SyntaxError, ValueError, RecursionError) as e:  # RecursionError: deeply nested generated code
            return (chunk_text(path, text, kind or "code", max_chars),
                    f"{path}: not parseable Python ({e.__class__.__name__}), indexed as text")
    return chunk_text(path, text, kind or "paper", max_chars), None
