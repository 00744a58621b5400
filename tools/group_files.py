"""Workspace file tools: ``read_file``, ``list_files``, ``search_files``.

All three go through :class:`~caramba.tools.sandbox.Sandbox`: paths are confined to the
workspace (``..``, outside absolute paths, symlinks out and ``.caramba/`` refused) and
results are bounded in size.
"""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field

from caramba.tools.common import ToolDeps, run_blocking, tool_errors
from caramba.tools.sandbox import FileEntry, SearchHit

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)


class FileText(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="workspace-relative path")
    text: str
    size: int = Field(description="file size in bytes")
    offset: int = Field(description="byte offset the text starts at")
    truncated: bool = Field(description="true when more text follows; call again with a larger offset")


class FileList(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entries: list[FileEntry]
    truncated: bool


class SearchResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hits: list[SearchHit]
    truncated: bool
    skipped_large: list[str] = Field(default_factory=list,
                                     description="files not searched because they exceed the server's size limit")


def register(server: MCPServer, deps: ToolDeps) -> None:
    """Add the workspace file tools."""
    sandbox = deps.sandbox

    @server.tool(annotations=READ_ONLY)
    @tool_errors
    async def read_file(
        path: Annotated[str, Field(description="file path relative to the workspace root")],
        offset: Annotated[int, Field(ge=0, description="byte offset to start reading at")] = 0,
        max_bytes: Annotated[int | None, Field(ge=1, description="bytes to read (capped by the server limit)")] = None,
    ) -> FileText:
        """Read a UTF-8 text file of the workspace (bounded; page with offset)."""
        text, size, truncated = await run_blocking(sandbox.read_text, path, offset=offset, max_bytes=max_bytes)
        return FileText(path=path, text=text, size=size, offset=offset, truncated=truncated)

    @server.tool(annotations=READ_ONLY)
    @tool_errors
    async def list_files(
        path: Annotated[str, Field(description="directory relative to the workspace root")] = ".",
        pattern: Annotated[str, Field(description="glob on the entry name, e.g. '*.yml'")] = "*",
        recursive: Annotated[bool, Field(description="descend into sub-directories")] = False,
    ) -> FileList:
        """List files and folders of the workspace."""
        entries, truncated = await run_blocking(sandbox.list_files, path, pattern=pattern, recursive=recursive)
        return FileList(entries=entries, truncated=truncated)

    @server.tool(annotations=READ_ONLY)
    @tool_errors
    async def search_files(
        query: Annotated[str, Field(description="text to look for (or a regex with regex=true)")],
        path: Annotated[str, Field(description="file or directory to search, relative to the workspace root")] = ".",
        glob: Annotated[str, Field(description="only files whose name matches this glob, e.g. '*.py'")] = "*",
        regex: Annotated[bool, Field(description="treat query as a Python regular expression")] = False,
    ) -> SearchResult:
        """Find lines in the workspace's text files (like grep -rn). Files over the server's
        size limit are not searched; they are named in skipped_large."""
        hits, truncated, skipped = await run_blocking(sandbox.search, query, path=path, glob=glob, regex=regex)
        return SearchResult(hits=hits, truncated=truncated, skipped_large=skipped)
