"""`edgecls review INBOX --data DATASET`: label collected frames in the browser."""

from __future__ import annotations

import getpass
import signal
import time
from pathlib import Path

import typer

from edgecls.cli.app import app
from edgecls.errors import ConfigError


@app.command("review")
def review(
    inbox: Path = typer.Argument(..., help="Inbox folder (`edgecls collect --into`), or any folder of images."),
    data: Path = typer.Option(..., "--data", help="Dataset the labels go into: DATASET/<class>/, or "
                              "train/<class>/ of a train/val/test dataset."),
    run: Path = typer.Option(None, "--run", help="Run (Grad-CAM on its float model) or artifact (.tflite, "
                             ".onnx, .xml: RISE, no TensorFlow) for heatmaps on demand."),
    port: int = typer.Option(0, help="Port on 127.0.0.1 (default: a free one)."),
    who: str = typer.Option(None, help="Name written in the ledger (default: the login name)."),
    open_browser: bool = typer.Option(True, "--open/--no-open", help="Open the page in the browser."),
    undo: str = typer.Option(None, "--undo", help="Undo one line of the dataset's ledger (its id, from any "
                             "session): the frame goes back into INBOX. No page is served."),
) -> None:
    """Label collected frames on a local web page, uncertain ones first, with the keyboard alone.

    The page (127.0.0.1 only, a token per session) shows each frame with the model's
    suggestion and top-k; one key per class, Enter accepts the suggestion, Space skips,
    Shift+X is "none of these", + adds a class, Backspace undoes, ? shows a heatmap. A label
    moves the frame into the dataset's class folder under its content-hash name; every
    decision is a line in DATASET/.edgecls-labels.jsonl (who, when, frame, label, suggestion).
    Nothing is overwritten; skipped frames stay in the inbox. Ctrl+C ends the session.
    """
    import webbrowser

    from rich.console import Console
    from rich.markup import escape

    from edgecls.review.heatmaps import HeatmapWorker
    from edgecls.review.server import ReviewServer
    from edgecls.review.session import ReviewSession

    if run is not None and not run.exists():
        raise ConfigError(f"--run {run} does not exist", "pass a training run folder or an exported model file")
    session = ReviewSession(inbox, data, who or getpass.getuser())
    console = Console(highlight=False)
    if undo:
        try:
            entry = session.undo_entry(undo)
        finally:
            session.close()
        what = f"label {entry['label']} ({entry['file']})" if entry["action"] == "label" else "none of these"
        console.print(f"undone: {escape(what)}; {escape(str(entry['frame']))} is back in {escape(str(inbox))}",
                      soft_wrap=True)
        return
    try:
        server = ReviewServer(session, port, HeatmapWorker(run) if run else None).start()
        console.print(f"{len(session.order)} frame(s) to label in {escape(str(session.inbox))} -> "
                      f"{escape(str(session.target.root))} ({len(session.target.classes)} classes)")
        if session.refused:
            console.print(f"[yellow]{len(session.refused)} file(s) not shown (left in the inbox):[/] "
                          + escape(", ".join(f"{n} ({r})" for n, r in list(session.refused.items())[:5])),
                          soft_wrap=True)
        console.print(f"review page: {server.url}\nCtrl+C ends the session", soft_wrap=True)
        if open_browser:
            webbrowser.open(server.url)
        _wait_for_ctrl_c()
        server.close()
    finally:
        session.close()
    counts = session.counts
    console.print(f"labelled {counts['label']}, none of these {counts['none']}, "
                  f"{len(session.order)} left in the inbox; ledger: {escape(str(session.ledger.path))}", soft_wrap=True)


def _wait_for_ctrl_c() -> None:
    """Blocks until Ctrl+C (or SIGTERM, e.g. from a service manager)."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
