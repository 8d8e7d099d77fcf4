"""`edgecls review INBOX --data DATASET`: label collected frames in the browser
(``edgecls.review_inbox``, ``edgecls.undo_label``)."""

from __future__ import annotations

from pathlib import Path

import typer

from edgecls.cli.app import app


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
    entry_id: str = typer.Option(None, "--undo", help="Undo one line of the dataset's ledger (its id, from any "
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
    from rich.console import Console
    from rich.markup import escape

    from edgecls.api.reviewing import review_inbox, undo_label

    console = Console(highlight=False)
    if entry_id:
        console.print(escape(undo_label(inbox, data, entry_id, who=who).summary()), soft_wrap=True)
        return
    page = review_inbox(inbox, data, run=run, port=port, who=who, open_browser=open_browser, wait=False)
    try:
        session = page.session
        console.print(f"{len(page.frames)} frame(s) to label in {escape(str(session.inbox))} -> "
                      f"{escape(str(session.target.root))} ({len(session.target.classes)} classes)")
        if page.refused:
            console.print(f"[yellow]{len(page.refused)} file(s) not shown (left in the inbox):[/] "
                          + escape(", ".join(f"{n} ({r})" for n, r in list(page.refused.items())[:5])),
                          soft_wrap=True)
        console.print(f"review page: {page.url}\nCtrl+C ends the session", soft_wrap=True)
        page.wait()
    finally:
        page.close()
    console.print(escape(page.summary()), soft_wrap=True)
