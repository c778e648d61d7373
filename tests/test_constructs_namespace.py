"""Canary: our top-level constructs/ folder merges into the library's namespace instead of shadowing it."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_constructs_folder_has_no_init() -> None:
    assert not (ROOT / "constructs" / "__init__.py").exists(), "delete constructs/__init__.py: it shadows the library"


def test_library_and_our_modules_both_import() -> None:
    import constructs
    from constructs import Construct

    from constructs.database import Database

    assert "site-packages" in str(constructs.__file__)
    assert Construct.__module__.startswith("constructs")
    assert Database.__module__ == "constructs.database"
