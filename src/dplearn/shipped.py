"""Files that ship with dplearn: the demonstrations and recorded results in ``data/`` and the trained
policies in ``checkpoints/``.

An installed package carries them under ``dplearn/_shipped/<folder>``; a checkout of the repository
has them in ``<folder>/`` at its root. :func:`shipped_path` looks in that order, so the same call works
in a wheel, in an editable install and on Colab after cloning.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["SHIPPED_FOLDERS", "shipped_path"]

#: the repository folders whose files ship with the package
SHIPPED_FOLDERS: tuple[str, ...] = ("data", "checkpoints")


def shipped_path(folder: str, file: str) -> Path:
    """Where the shipped file ``folder/file`` lives: inside the installed package
    (``dplearn/_shipped/FOLDER/FILE``), else the repository's ``FOLDER/FILE``.

    ``folder`` is one of :data:`SHIPPED_FOLDERS`; ``file`` is a bare file name. Raises ``ValueError``
    for anything else and ``FileNotFoundError`` naming both places when the file is in neither.
    """
    if folder not in SHIPPED_FOLDERS:
        raise ValueError(f"folder must be one of {', '.join(map(repr, SHIPPED_FOLDERS))}; got {folder!r}")
    if not isinstance(file, str) or not file or "/" in file or "\\" in file or file in (".", ".."):
        raise ValueError(f"file must be the name of a file in {folder}/ (no folders), got {file!r}")
    package_dir = Path(__file__).resolve().parent  # .../dplearn
    candidates = [package_dir / "_shipped" / folder / file,
                  package_dir.parent.parent / folder / file]  # src/dplearn -> repository root
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"the shipped file {file} was not found (looked in the installed package's "
                            f"_shipped/{folder} and the repository's {folder}/)")
