"""Compiling ``paper.tex`` to ``paper.pdf`` with TeX Live (``paper_write``).

The sequence is the classic one, run non-interactively and stopping at the first error::

    pdflatex -interaction=nonstopmode -halt-on-error -file-line-error paper.tex
    bibtex paper                     # only when the document has \\bibliography
    pdflatex …  (twice: citations, then cross-references)

It runs in a private build folder inside the run directory (the .tex, .bib and figures
are copied there), so a failed or interrupted compile never leaves a half-written
``paper.pdf`` behind: only a finished PDF is moved into place (rename). The full TeX log
is always kept as ``paper.log`` next to the paper.

Errors are made readable: with ``-file-line-error`` TeX prints ``./paper.tex:42: Undefined
control sequence.``; :func:`first_error` finds the first such line (plus the ``l.42 …``
context line) and :class:`LatexCompileError` reports it as ``paper.tex:42: …``.

No TeX engine installed (no ``pdflatex`` on PATH) is not an error: :func:`compile_pdf`
answers ``engine: None`` with the install hint, and ``paper_write`` records it as skipped.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from caramba.engine.errors import CarambaError

INSTALL_HINT = ("install TeX Live, e.g. apt-get install --no-install-recommends texlive-latex-base "
                "texlive-latex-recommended texlive-fonts-recommended lmodern")
_FILE_LINE = re.compile(r"^(?:\./)?(?P<file>[^:\s]+\.tex):(?P<line>\d+): (?P<msg>.+)$")
_BANG = re.compile(r"^! (?P<msg>.+)$")
_CONTEXT = re.compile(r"^l\.(?P<line>\d+) ?(?P<src>.*)$")


class LatexCompileError(CarambaError):
    """TeX stopped on an error (or ran past its time limit)."""


def first_error(log: str) -> tuple[str | None, int | None, str] | None:
    """``(file, line, message)`` of the first TeX error in ``log``, or None.

    The message includes the ``l.<n> <source>`` context TeX prints after it, when present."""
    lines = log.splitlines()
    for i, text in enumerate(lines):
        m = _FILE_LINE.match(text) or _BANG.match(text)
        if not m:
            continue
        file = m.groupdict().get("file")
        line = int(m.group("line")) if m.groupdict().get("line") else None
        msg = m.group("msg").strip()
        for follow in lines[i + 1:i + 12]:
            c = _CONTEXT.match(follow)
            if c:
                line = line or int(c.group("line"))
                if c.group("src").strip():
                    msg += f" (at: {c.group('src').strip()})"
                break
        return file, line, msg
    return None


def _run(cmd: list[str], cwd: Path, timeout: float, what: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, errors="replace")
    except subprocess.TimeoutExpired:
        raise LatexCompileError(f"{what}: `{' '.join(cmd)}` did not finish within {timeout:.0f}s",
                                fix="look for a runaway macro in the .tex, or raise the compile timeout") from None


def compile_pdf(folder: Path, tex: str = "paper.tex", timeout: float = 120) -> dict[str, Any]:
    """Compile ``folder/tex`` to ``folder/<stem>.pdf``.

    Returns ``{engine, ok, log, pdf}`` (``engine: None`` when no TeX is installed); raises
    :class:`LatexCompileError` naming the first error and its ``.tex`` line otherwise."""
    pdflatex = shutil.which("pdflatex")
    if pdflatex is None:
        return {"engine": None, "ok": False, "pdf": None, "log": f"no pdflatex on PATH ({INSTALL_HINT})"}
    stem = Path(tex).stem
    source = folder / tex
    build = folder / f".latex-build-{os.getpid()}"
    shutil.rmtree(build, ignore_errors=True)
    build.mkdir()
    try:
        for f in folder.iterdir():
            if f.is_file() and f.suffix in {".tex", ".bib", ".png", ".pdf", ".jpg", ".sty", ".cls", ".bst"} \
                    and f.name != f"{stem}.pdf":
                shutil.copyfile(f, build / f.name)
        latex = [pdflatex, "-interaction=nonstopmode", "-halt-on-error", "-file-line-error", tex]
        passes: list[list[str]] = [latex]
        if re.search(r"\\bibliography\{", source.read_text(errors="replace")):
            if shutil.which("bibtex") is None:
                raise LatexCompileError("the paper has a bibliography but bibtex is not installed", fix=INSTALL_HINT)
            passes.append(["bibtex", stem])
        passes += [latex, latex]
        logs: list[str] = []
        for cmd in passes:
            proc = _run(cmd, build, timeout, f"compiling {source}")
            logs.append(proc.stdout + proc.stderr)
            if cmd[0] == "bibtex":
                if proc.returncode >= 2:           # 1 = warnings only (e.g. an unused entry)
                    raise LatexCompileError(f"bibtex failed on {folder / (stem + '.bib')}:\n"
                                            + "\n".join(proc.stdout.splitlines()[-8:]),
                                            fix="fix the .bib entry bibtex names (see paper.log)")
                continue
            texlog = build / f"{stem}.log"
            if texlog.is_file():
                shutil.copyfile(texlog, folder / f"{stem}.log")
            if proc.returncode != 0 or not (build / f"{stem}.pdf").is_file():
                found = first_error(proc.stdout) or first_error(texlog.read_text(errors="replace")
                                                                 if texlog.is_file() else "")
                where = f"{source}:{found[1]}" if found and found[1] else str(source)
                msg = found[2] if found else f"pdflatex exited {proc.returncode} without a PDF"
                raise LatexCompileError(f"LaTeX error in {where}: {msg}",
                                        fix=f"fix that line of {source.name} (full log: {folder / (stem + '.log')}),"
                                            " or set compile: false in the process")
        os.replace(build / f"{stem}.pdf", folder / f"{stem}.pdf")
        return {"engine": "pdflatex", "ok": True, "pdf": str(folder / f"{stem}.pdf"),
                "log": "\n".join(logs)[-2000:]}
    finally:
        shutil.rmtree(build, ignore_errors=True)
