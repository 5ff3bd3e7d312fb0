"""The ``moorage`` command line, shaped like the docker CLI.

The parser and the verbs are in ``runtime.cli.main``. This module is the console
script's entry, and stays tiny: each call first hands its command to a warm server
(``warm_client``, ``warm_server``) that has the engine imported already, and only runs
it here when there is none.
"""

import sys


def entry() -> None:
    """The ``moorage`` console script and ``python -m runtime.cli``."""
    from runtime.cli import warm_client

    code = warm_client.run(sys.argv)
    if code is not None:
        sys.exit(code)
    from runtime.cli.main import entry as run_here

    run_here()
