"""A file that appears under its name only when it is complete (temporary file + rename)."""
from __future__ import annotations

import os
import tempfile

__all__ = ["AtomicFile"]


class AtomicFile:
    """Binary file written next to ``path`` under a temporary name; :meth:`commit` fsyncs it,
    gives it the permissions a plain ``open(path, "wb")`` would and renames it to ``path``;
    :meth:`abort` removes it and leaves ``path`` as it was.

    Args:
        path: the target file (its folder is created if missing).
        suffix: suffix of the temporary name (``.tmp-XXXXXXXX<suffix>``).
    """

    def __init__(self, path: str | os.PathLike, suffix: str = "") -> None:
        self.path = os.fspath(path)
        folder = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(folder, exist_ok=True)
        handle, self.temporary = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=folder)
        self.file = os.fdopen(handle, "wb")

    def write(self, data: bytes) -> None:
        self.file.write(data)

    def tell(self) -> int:
        return self.file.tell()

    def commit(self) -> str:
        """Finish the file and move it to ``path``; returns ``path``."""
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.temporary, 0o666 & ~umask)
        os.replace(self.temporary, self.path)
        return self.path

    def abort(self) -> None:
        """Drop the temporary file (the target is left untouched)."""
        if not self.file.closed:
            self.file.close()
        if os.path.exists(self.temporary):
            os.unlink(self.temporary)
