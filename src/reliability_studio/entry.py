"""The `reliability-studio` command's entry point: the CLI is imported with the garbage
collector paused.

Importing the CLI makes several hundred thousand objects (modules, classes, SQLAlchemy
tables, pydantic schemas) that live as long as the process. While they are being made,
the collector's full passes walk all of them again and again and free nothing: about
0.3 s of a 1.8 s `serve` start on a 2-core machine. So collection waits until the imports
are done; what they made is then frozen (moved out of the collector's sight, as
`create_served_app` does again for the app it builds) and collection resumes.
"""

from __future__ import annotations

import gc


def main() -> None:
    """Run the `reliability-studio` command."""
    gc.disable()
    try:
        from reliability_studio.cli import app
    finally:
        gc.freeze()
        gc.enable()
    app()
