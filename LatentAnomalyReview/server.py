"""Start the review server: print its address, serve until Ctrl-C or SIGTERM, then return cleanly.

aiohttp's runner turns SIGINT and SIGTERM into a graceful exit of trame's event loop, so :func:`serve` returns 0 and
the process ends with its normal exit code. trame reads ``sys.argv`` for its own options; it is given none of ours.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from LatentAnomalyLib.errors import InputError

from .results import Results


def serve(results: Results, host: str = "127.0.0.1", port: int = 0) -> int:
    """Serve ``results`` on ``host:port`` (0: a free port) until stopped; prints ``review: serving ... at URL``."""
    from .case_data import CaseData

    with ThreadPoolExecutor(1) as pool:  # read the first case while slicer, vtk and trame are imported
        first = pool.submit(CaseData.load, results.cases[results.first_viewable()], results.root)
        from .app import ReviewApp
        from .files import add_results_route

        first_case = first.result()

    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")  # headless: no X server to try
    os.environ["WSLINK_READY_MSG"] = ""  # wslink's own start-up line would mix with ours on stdout
    argv, sys.argv = sys.argv, sys.argv[:1]
    try:
        app = ReviewApp(results, first_case)
        server = app.server
        root: Path = results.root

        def bind(wslink_server) -> None:
            add_results_route(wslink_server.app, root)

        def ready(**_) -> None:
            shown = f"[{host}]" if ":" in host else host
            print(f"review: serving {root} at http://{shown}:{server.port}/ (Ctrl-C to stop)", flush=True)

        server.controller.on_server_bind.add(bind)
        server.controller.on_server_ready.add(ready)
        try:
            server.start(
                host=host,
                port=port,
                open_browser=False,
                show_connection_info=False,
                disable_logging=True,
                timeout=0,
            )
        except OSError as error:  # port in use, address not on this machine, no permission
            raise InputError(f"cannot listen on {host}:{port} ({error.strerror or error})") from None
    finally:
        sys.argv = argv
    print("review: stopped", flush=True)
    return 0
