"""``review_inbox``: label collected frames on a local web page (``edgecls review``), and
``undo_label``: put one labelled frame back (``edgecls review --undo``).

In a notebook, ``review_inbox(..., wait=False)`` returns the running page at once: open its
link, label, then ``close()`` it (or use it in a ``with`` block). Its ``session`` is the
same ``edgecls.review.session.ReviewSession`` the page drives (``label``,
``none_of_these``, ``skip``, ``undo``), for labelling from code.
"""

from __future__ import annotations

import getpass
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecls.api import html
from edgecls.errors import ConfigError
from edgecls.review.heatmaps import HeatmapWorker
from edgecls.review.server import ReviewServer
from edgecls.review.session import ReviewSession


class ReviewPage:
    """A review session served on 127.0.0.1 (a token per session) until ``close()``."""

    def __init__(self, session: ReviewSession, server: ReviewServer) -> None:
        self.session = session
        self.server = server
        self.closed = False

    @property
    def url(self) -> str:
        """The page's address, with its token."""
        return self.server.url

    @property
    def counts(self) -> dict[str, int]:
        """Decisions so far: ``label``, ``none`` (none of these), ``skip``."""
        return dict(self.session.counts)

    @property
    def frames(self) -> list[str]:
        """Frames still in the inbox, in the order the page shows them (uncertain first)."""
        return list(self.session.order)

    @property
    def refused(self) -> dict[str, str]:
        """Inbox files not shown (file name -> why); they stay in the inbox."""
        return dict(self.session.refused)

    @property
    def ledger_path(self) -> Path:
        """The dataset's ``.edgecls-labels.jsonl``: one line per decision."""
        return Path(self.session.ledger.path)

    def wait(self) -> None:
        """Blocks until Ctrl+C (a notebook's interrupt; SIGTERM too, in the main thread),
        then closes the page. The SIGTERM handler is restored afterwards."""
        main = threading.current_thread() is threading.main_thread()
        previous = signal.getsignal(signal.SIGTERM) if main else None
        try:
            if main:  # a service manager's stop ends the session as Ctrl+C does
                signal.signal(signal.SIGTERM, signal.default_int_handler)
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            if main:
                signal.signal(signal.SIGTERM, previous)
            self.close()

    def close(self) -> None:
        """Stops serving and releases the inbox for another review (again: nothing)."""
        if not self.closed:
            self.closed = True
            try:
                self.server.close()
            finally:
                self.session.close()

    def summary(self) -> str:
        counts = self.counts
        return (f"labelled {counts['label']}, none of these {counts['none']}, {len(self.frames)} left in "
                f"the inbox; ledger: {self.ledger_path}")

    def to_dict(self) -> dict[str, Any]:
        return {"url": None if self.closed else self.url, "inbox": str(self.session.inbox),
                "dataset": str(self.session.target.root), "classes": list(self.session.target.classes),
                "counts": self.counts, "frames": self.frames, "refused": self.refused,
                "ledger": str(self.ledger_path)}

    def __enter__(self) -> ReviewPage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _repr_html_(self) -> str:
        link = "closed" if self.closed else \
            f"<a href='{html.escape(self.url)}' target='_blank'>open the review page</a>"
        return (f"<p>{link}: {len(self.frames)} frame(s) in {html.escape(str(self.session.inbox))} -> "
                f"{html.escape(str(self.session.target.root))}</p>" + html.note(self.summary()))


@dataclass
class UndoneDecision:
    """The ledger line ``undo_label`` reversed; its frame is back in the inbox."""

    entry: dict[str, Any]
    inbox: Path

    def summary(self) -> str:
        what = (f"label {self.entry['label']} ({self.entry['file']})" if self.entry["action"] == "label"
                else "none of these")
        return f"undone: {what}; {self.entry['frame']} is back in {self.inbox}"

    def to_dict(self) -> dict[str, Any]:
        return dict(self.entry)

    def _repr_html_(self) -> str:
        return html.note(self.summary())


def review_inbox(inbox: str | Path, data: str | Path, run: str | Path | None = None, port: int = 0,
                 who: str | None = None, open_browser: bool = True, wait: bool = True) -> ReviewPage:
    """Serves the labelling page for an inbox of collected frames (``edgecls review``).

    The page shows each frame with the model's suggestion and top-k, uncertain ones first;
    a label moves the frame into the dataset's class folder under its content-hash name,
    and every decision is a line in ``DATASET/.edgecls-labels.jsonl``. Nothing is overwritten.

    Args:
        inbox: the folder ``edgecls collect --into`` filled, or any folder of images.
        data: the dataset the labels go into: ``DATASET/<class>/``, or ``train/<class>/``
            of a train/val/test dataset.
        run: a run (Grad-CAM on its float model) or artifact (RISE, no TensorFlow) for
            heatmaps on demand.
        port: port on 127.0.0.1 (0: a free one).
        who: the name written in the ledger (None: the login name).
        open_browser: open the page in the browser.
        wait: block until Ctrl+C (as the command does) and return the closed page; False
            returns the running page at once (close it yourself).

    Raises:
        ConfigError: the inbox is missing, another review works on it, or ``run`` does not exist.
        DataError: ``data`` is not a folder-per-class dataset.
    """
    if run is not None and not Path(run).exists():
        raise ConfigError(f"--run {run} does not exist", "pass a training run folder or an exported model file")
    session = ReviewSession(inbox, data, who or getpass.getuser())
    try:
        page = ReviewPage(session, ReviewServer(session, port, HeatmapWorker(run) if run else None).start())
    except BaseException:
        session.close()
        raise
    if open_browser:
        import webbrowser

        webbrowser.open(page.url)
    if wait:
        page.wait()
    return page


def undo_label(inbox: str | Path, data: str | Path, entry_id: str, who: str | None = None) -> UndoneDecision:
    """Undoes one line of the dataset's ledger (its id, from any session): the frame goes
    back into the inbox (``edgecls review --undo``). No page is served.

    Raises:
        ReviewError: no such label or "none of these" line, or it was undone already.
        ConfigError: the inbox is missing, or a review works on it.
    """
    session = ReviewSession(inbox, data, who or getpass.getuser())
    try:
        return UndoneDecision(session.undo_entry(entry_id), Path(inbox))
    finally:
        session.close()
