"""The control room: nine tabs over the town's store and its daemon.

The app owns the long-lived tasks (the daemon's event stream, the approval queue, the
file watcher) and routes what they bring to the panes; the panes own their widgets.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import time
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from rich.segment import Segments
from textual import events, on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.notifications import SeverityLevel
from textual.screen import ModalScreen, Screen
from textual.timer import Timer
from textual.widget import AwaitMount
from textual.widgets import ContentSwitcher, Input
from textual.worker import WorkerError

from tundra_tui.daemon.protocol import (
    Approve,
    ChangedEvent,
    ConfigSet,
    Deny,
    LinkEvent,
    Request,
    Up,
)
from tundra_tui.domain.clock import iso, parse_iso
from tundra_tui.domain.errors import TundraError
from tundra_tui.domain.mail import OPERATOR
from tundra_tui.domain.sanitize import visible
from tundra_tui.resources import styles_dir
from tundra_tui.ui import collector, popup_gate
from tundra_tui.ui.away import Presence
from tundra_tui.ui.keymap import (
    BindingRow,
    collect,
    declared,
    declared_ids,
    display_keys,
    keymap_from_config,
)
from tundra_tui.ui.live import Change
from tundra_tui.ui.messages import DaemonRequest, OpenApproval, RememberChoice
from tundra_tui.ui.panes.base import Pane
from tundra_tui.ui.services import Services
from tundra_tui.ui.tabs import TAB_TITLES, Tab, default_tabs
from tundra_tui.ui.widgets.key_hints import KeyHints
from tundra_tui.ui.widgets.search_bar import SearchBar
from tundra_tui.ui.widgets.tab_bar import TabBar
from tundra_tui.ui.widgets.title_bar import TitleBar

if TYPE_CHECKING:
    from tundra_tui.ui.modals.approval import ApprovalModal
    from tundra_tui.ui.modals.inbox import InboxModal
    from tundra_tui.ui.modals.mail import MailView

START_DAEMON_KEY = "ctrl+s"
"""Starts the daemon again after `at daemon stop` (the control room never does by itself)."""

STORE_EVENTS = frozenset({"beads", "convoys", "refinery"})
"""Changes the daemon announces that also append to the store's event log (the file watcher
skips them, so that each causes one reload)."""
ANNOUNCE_GRACE_S = 0.25
"""How long the file watcher lets the daemon's announcement of a write arrive before it
decides the write was someone else's."""

BRAKE_SHOWS = frozenset({"brake", "usage", "config", "store"})
"""Changes that can move the title bar's budget and pause marks."""
MAIL_SHOWS = frozenset({"mail", "events", "store"})
"""Changes that can move the operator's unread mail (the title bar's `✉ N`)."""
BRAKE_INTERVAL = 30.0
"""Seconds between reads of the brake regardless (a new UTC day, a pause's end)."""
RELOAD_GAP_S = 1.0
"""A pane on show reloads for changes at most this often: twenty busy agents change the store
many times a second, and each reload re-reads and redraws."""
REMEMBER_AFTER_S = 1.0
"""A choice made with a key is written once the operator stops changing it this long (`t`
pressed five times is one write)."""

NEWS = 500
"""Store events read per watcher batch to tell what they touched; more means "everything"."""

EVENT_TOPICS = {"bead": "beads", "convoy": "convoys", "agent": "agents", "refinery": "refinery"}
"""What an event's kind (`bead.hook`) says changed besides the event log, as SHOWS names it."""

APP_STYLES = ("tundra.tcss", "confirm.tcss")
"""Stylesheets read at start: the frame and the modals any tab opens. A tab's own,
styles/<tab id>.tcss, is read when its pane is first composed (the first frame parses the
first tab's only)."""

THEMES = ("textual-dark", "nord", "gruvbox", "tokyo-night", "textual-light", "ansi-dark")
"""What `t` cycles through; ansi-dark uses the terminal's own 16 colours."""


MODALS: tuple[tuple[str, str], ...] = (
    ("approval", "approval:ApprovalModal"),
    ("approval inbox", "inbox:InboxModal"),
    ("approval rules", "rules:RulesModal"),
    ("mail", "mail:MailView"),
    ("mail compose", "mail:MailCompose"),
    ("confirm", "confirm:ConfirmModal"),
    ("bead detail", "bead_detail:BeadDetail"),
    ("bead form", "bead_form:BeadForm"),
    ("config edit", "config_edit:ConfigEditModal"),
    ("record", "record:RecordModal"),
)
"""Modals whose keys help lists (they work only while the modal is open), as `module:class`
under `tundra_tui.ui.modals`: imported when help or the palette first lists them."""


def _modal(where: str) -> Any:
    module, _, name = where.partition(":")
    return getattr(importlib.import_module(f"tundra_tui.ui.modals.{module}"), name)


def _verb_provider() -> Any:
    """The palette's verbs and agent jumps (ui/verbs.py), imported when the palette opens."""
    from tundra_tui.ui.verbs import VerbProvider

    return VerbProvider


def _tab_bindings() -> list[BindingType]:
    return [
        Binding(str(n), f"show_tab('{tab_id}')", f"Show {title}", id=f"tab-{tab_id}", show=False)
        for n, (tab_id, title) in enumerate(TAB_TITLES, 1)
    ]


class TundraApp(App[None]):
    """`at tui`: renders the town and sends every action to the daemon."""

    CSS_PATH: ClassVar[Any] = [styles_dir() / name for name in APP_STYLES]
    TITLE = "auto-tundra"
    COMMAND_PALETTE_BINDING = "colon"
    COMMANDS: ClassVar[Any] = App.COMMANDS | {_verb_provider}

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("colon", "command_palette", "Commands", id="palette"),
        Binding("slash", "search", "Search", id="search", priority=True),
        Binding("question_mark", "help", "Help", id="help"),
        Binding("I", "inbox", "Approvals", id="inbox"),
        Binding("M", "mail", "Mail", id="mail"),
        Binding("t", "cycle_theme", "Theme", id="theme", show=False),
        Binding("r", "refresh", "Refresh", id="refresh", show=False),
        Binding("q", "quit", "Quit", id="quit"),
        Binding(START_DAEMON_KEY, "start_daemon", "Start the daemon", id="start-daemon"),
        *_tab_bindings(),
    ]
    """Global keys. A focused agent terminal or text field receives them all. `/` is checked
    first (priority) so letters typed right after it reach the search line, and stands aside
    (`check_action`) while a text field has focus or a modal is open. Start the daemon is
    shown only while the daemon is down because the operator stopped it."""

    def __init__(
        self,
        services: Services,
        *,
        tabs: Iterable[Tab] | None = None,
        watch_files: bool = True,
        demo: bool = False,
        approval_popup: bool | None = None,
        clock_interval: float = 1.0,
        start_agents: bool = False,
    ) -> None:
        super().__init__()
        self.services = services
        self.tabs = tuple(tabs) if tabs is not None else default_tabs()
        self.watch_files = watch_files
        self.demo = demo
        config = services.config
        self._popup_forced = approval_popup is not None
        self.approval_popup = (
            bool(config.get("ui.approval_popup")) if approval_popup is None else approval_popup
        )
        self.arm_seconds = int(config.get("ui.approval_arm_ms")) / 1000
        self._choices: dict[str, tuple[str, Timer]] = {}
        """Choices made with a key (theme, layout) waiting to be written (see `remember`)."""
        self.clock_interval = clock_interval
        self.start_agents = start_agents
        self.current_tab = self.tabs[0].id
        self._approvals: asyncio.Queue[int] = asyncio.Queue()
        self._queued: set[int] = set()
        self._approval_modal: ApprovalModal | None = None
        self._inbox: InboxModal | None = None
        self._mail: MailView | None = None
        self._asked: set[int] = set()
        """Requests the operator asked to see (Dashboard): shown without waiting for quiet."""
        self._shelved: set[int] = set()
        """Requests the operator has seen in the inbox: they wait there, no popup."""
        self.last_key = float("-inf")
        """When the operator last pressed a key (monotonic), the approval popup's own aside."""
        self.typing_pause = popup_gate.TYPING_PAUSE_S
        self.presence = Presence()
        """The operator's last input, for "while you were away" (ui/away.py)."""
        self._welcomed = False
        """Whether the last presence noted in the store was read (`welcome_back`): until
        then input is not written over it."""
        self._reloading: dict[str, bool] = {}
        self._said: dict[str, str] = {}
        self._searched: dict[str, str] = {}
        """Each tab's own filter: a search belongs to the tab it was typed on."""
        self.daemon_stopped = False
        """The daemon is down because the operator stopped it: offer to start it, never
        start it unasked."""
        self._events_seen = 0
        """The newest store event the panes were reloaded for (see `follow_files`)."""
        self.store_batches = 0
        """Batches of store writes the file watcher has looked at."""
        self._panes: dict[str, Pane] = {}
        """The panes composed so far, by tab id: a tab's pane is composed when first shown."""
        self._mounting: dict[str, AwaitMount] = {}
        """Panes composed but not yet mounted, by pane id (their widgets do not exist yet)."""
        self._stale: set[str] = set()
        """Tabs whose pane must reload when next shown: data it shows changed while hidden.
        A pane shown again with nothing changed only refreshes what depends on the clock."""
        self._loaded_at: dict[str, float] = {}
        """When each pane (by id) last started a reload (see `RELOAD_GAP_S`)."""
        self._due: set[str] = set()
        """Panes (by id) whose reload for a change waits for the gap to pass."""
        self._looked = False
        self.first_shows: set[str] = set()
        """Tabs shown for the first time whose pane is not yet mounted and laid out."""
        """Whether `_events_seen` was set from the store (see `_caught_up_now`)."""

    # ---- layout ------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield TitleBar(id="title-bar")
        yield TabBar([(t.id, t.title) for t in self.tabs], id="tab-bar")
        with ContentSwitcher(initial=f"pane-{self.current_tab}", id="panes"):
            yield self._new_pane(self.current_tab)  # the others when first shown
        yield SearchBar(id="search-bar")
        yield KeyHints(id="key-hints")

    def on_mount(self) -> None:
        self._apply_ui(started=True)
        self.query_one(TabBar).active = self.current_tab
        self.started_at = self.services.now()
        self.presence.start(self.started_at)
        title = self.query_one(TitleBar)
        title.town = self.services.town.name
        title.demo = self.demo
        self._tick()
        if self.clock_interval > 0:
            self.set_interval(self.clock_interval, self._tick)
            self.set_interval(BRAKE_INTERVAL, self.read_brake)
        self.follow_daemon()
        self.serve_approvals()
        self._show(self.current_tab)
        self.call_after_refresh(self._after_first_frame)

    def _after_first_frame(self) -> None:
        """What the first frame does not need: the budgets (the title bar's brake: its first
        read imports the usage reports), the unread mail, the file watcher, the other tabs'
        modules."""
        self.read_brake()
        self.read_mail()
        if self.watch_files:
            self.follow_files()
        self.prepare_tabs()
        self.welcome_back()

    @work(group="prepare-tabs", exit_on_error=False)
    async def prepare_tabs(self) -> None:
        """Import the other tabs' modules off the event loop (their first show then only
        composes), and check `ui.keys` against every binding they declare."""
        try:
            for worker in [w for w in self.workers if w.group.startswith("reload-")]:
                with contextlib.suppress(WorkerError):
                    await worker.wait()  # the first tab's data comes first
            modules = [tab.module for tab in self.tabs if tab.module]
            if modules:
                await asyncio.to_thread(lambda: [importlib.import_module(m) for m in modules])
        finally:
            collector.settle()  # start-up is over (see ui/collector.py)
        known = declared_ids("tundra_tui.") | {row.id for row in self.binding_rows()}
        for problem in keymap_from_config(self.services.config.get("ui.keys"), known)[1]:
            self.notify(problem, severity="warning")

    @property
    def panes(self) -> list[Pane]:
        """The panes composed so far, in tab order (a tab's pane is composed on first show)."""
        return [self._panes[tab.id] for tab in self.tabs if tab.id in self._panes]

    def pane(self, tab_id: str) -> Pane:
        """The pane of one tab, composed now (hidden, mounting) if it was not yet."""
        pane = self._panes.get(tab_id)
        if pane is None:
            pane = self._new_pane(tab_id)
            pane.display = False
            self._mounting[pane.id or ""] = self.query_one("#panes", ContentSwitcher).mount(pane)
        return pane

    def _new_pane(self, tab_id: str) -> Pane:
        tab = next(t for t in self.tabs if t.id == tab_id)
        styles = styles_dir() / f"{tab_id}.tcss"
        if styles.is_file() and not self.stylesheet.has_source(str(styles)):
            # Parsed with the next styling, before the pane's widgets are styled.
            self.stylesheet.add_source(styles.read_text("utf-8"), read_from=(str(styles), ""))
        pane = self._panes[tab_id] = tab.make(self.services, f"pane-{tab_id}")
        self._stale.add(tab_id)  # never loaded
        return pane

    def _mark_stale(self, what: str) -> None:
        """Hidden panes that show `what` ("store": anything) reload when next shown."""
        for tab_id, pane in self._panes.items():
            if tab_id != self.current_tab and (what == "store" or what in pane.SHOWS):
                pane.changed(what)
                self._stale.add(tab_id)

    def _reload_soon(self, pane: Pane) -> None:
        """Reload the pane on show for a change now, or once `RELOAD_GAP_S` has passed since
        its last reload (changes meanwhile join that one)."""
        key = pane.id or ""
        if key in self._due:
            return
        wait = self._loaded_at.get(key, -RELOAD_GAP_S) + RELOAD_GAP_S - time.monotonic()
        if wait <= 0:
            self.reload_pane(pane)
            return
        self._due.add(key)

        def due() -> None:
            self._due.discard(key)
            if pane is self._panes.get(self.current_tab):
                self.reload_pane(pane)
            else:
                self._stale.add(key.removeprefix("pane-"))

        self.set_timer(wait, due)

    async def _mounted(self, pane: Pane) -> None:
        """Until a pane composed on first show has its widgets."""
        mounting = self._mounting.get(pane.id or "")
        if mounting is not None and not pane.is_mounted:
            await mounting
        self._mounting.pop(pane.id or "", None)

    async def compose_all(self) -> None:
        """Compose every tab's pane (help and the palette list what each one binds)."""
        for tab in self.tabs:
            await self._mounted(self.pane(tab.id))

    @property
    def active_pane(self) -> Pane:
        """The pane being shown."""
        return self.pane(self.current_tab)

    # ---- tabs, refresh, search, theme, help, palette -------------------------------------------

    def action_show_tab(self, tab_id: str) -> None:
        """Switch to a tab (keys 1-9)."""
        if tab_id not in {t.id for t in self.tabs}:
            return
        self._show(tab_id)

    def _show(self, tab_id: str) -> None:
        self.current_tab = tab_id
        pane = self.pane(tab_id)
        self.query_one("#panes", ContentSwitcher).current = f"pane-{tab_id}"
        self.query_one(TabBar).active = tab_id
        if not pane.is_mounted:
            self.first_shows.add(tab_id)
            self.run_worker(self._first_show(pane, tab_id), exit_on_error=False)
        else:
            self._shown(pane, tab_id)

    async def _first_show(self, pane: Pane, tab_id: str) -> None:
        await self._mounted(pane)
        # Once laid out: a pane fits its tables to the size it has when it first loads.
        self.call_after_refresh(self._first_shown, pane, tab_id)

    def _first_shown(self, pane: Pane, tab_id: str) -> None:
        self.first_shows.discard(tab_id)
        if self.current_tab == tab_id:
            self._shown(pane, tab_id)

    def _shown(self, pane: Pane, tab_id: str) -> None:
        """Show the tab's own filter, reload if what it shows changed while hidden, focus."""
        self._show_filter(self._searched.get(tab_id, ""))
        if tab_id in self._stale or pane.shown_again():
            self.reload_pane(pane)
        pane.focus_default()

    def reload_pane(self, pane: Pane) -> None:
        """Reload one pane; requests that arrive during a reload coalesce into one more."""
        key = pane.id or ""
        self._stale.discard(key.removeprefix("pane-"))
        if key in self._reloading:
            self._reloading[key] = True
            return
        self._reloading[key] = False
        self.run_worker(self._reload(pane, key), group=f"reload-{key}", exit_on_error=False)

    async def _reload(self, pane: Pane, key: str) -> None:
        try:
            await self._mounted(pane)
            while True:
                self._loaded_at[key] = time.monotonic()
                try:
                    await pane.reload()
                    self._said.pop(key, None)
                except TundraError as error:
                    self._stale.add(key.removeprefix("pane-"))  # try again when shown again
                    self.say_once(key, _one_line(error))
                if not self._reloading.get(key):
                    return
                self._reloading[key] = False
        finally:
            self._reloading.pop(key, None)

    def action_refresh(self) -> None:
        """Re-read the configuration and the active pane now."""
        self._reload_config()
        self.active_pane.changed("store")  # all of it
        self.reload_pane(self.active_pane)

    def _reload_config(self) -> None:
        """Re-read the config; a broken file is reported in one line and the last good one kept."""
        try:
            self.services.reload_config()
        except TundraError as error:
            self.notify(f"config: {_one_line(error)}", severity="error")
            return
        self._apply_ui(started=False)

    def _apply_ui(self, *, started: bool) -> None:
        """Apply the `ui.*` settings the app can take while it runs: the theme, the keys and
        the approval popup (read at construction on `started`; the others say when they
        apply: `UI_LATER` in panes/config.py)."""
        config = self.services.config
        theme = str(config.get("ui.theme"))
        if theme in self.available_themes:
            if theme != self.theme:
                self.theme = theme
        else:
            self.say_once(
                "theme", f"ui.theme: no theme named {visible(theme, single_line=True)!r}", "warning"
            )
        # Every well-formed entry applies now; ids are checked once every tab's module is in.
        raw_keys = config.get("ui.keys")
        self.set_keymap(keymap_from_config(raw_keys, set(raw_keys or ()))[0])
        if started:
            return
        if not self._popup_forced:
            self.approval_popup = bool(config.get("ui.approval_popup"))
        self.arm_seconds = int(config.get("ui.approval_arm_ms")) / 1000

    @on(RememberChoice)
    def _remember_choice(self, message: RememberChoice) -> None:
        self.remember(message.key, message.value)

    def remember(self, key: str, value: str) -> None:
        """Keep a choice made with a key (`t`, the Agents layout) for the next start: written to
        the town's local layer (the file that wins over the others) through the daemon, once
        the operator has stopped cycling for `REMEMBER_AFTER_S`."""
        pending = self._choices.pop(key, None)
        if pending is not None:
            pending[1].stop()

        def write() -> None:
            self._choices.pop(key, None)
            self.post_message(DaemonRequest(ConfigSet(key=key, value=value, layer="local")))

        self._choices[key] = (value, self.set_timer(REMEMBER_AFTER_S, write))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "search":
            # A text field takes `/` as text (asked rather than isinstance: no TextArea import).
            typing = self.focused is not None and self.focused.check_consume_key("slash", "/")
            return not typing and not isinstance(self.screen, ModalScreen)
        if action == "start_daemon":
            return self.daemon_stopped
        if action == "inbox":  # shown in the key line while something waits
            return bool(self.services.live.approvals)
        return True

    def action_search(self) -> None:
        """Show the search line; typing filters the active pane."""
        bar = self.query_one(SearchBar)
        bar.display = True
        # Focus now, not on a later tick: letters typed right after `/` belong to the search.
        self.screen.set_focus(bar)

    @on(SearchBar.Filter)
    def _search_changed(self, event: SearchBar.Filter) -> None:
        self._searched[self.current_tab] = event.text
        self.active_pane.search(event.text)

    def _show_filter(self, text: str) -> None:
        """The search line as the shown tab left it: its text, shown only if it filters."""
        bar = self.query_one(SearchBar)
        if bar.value != text:
            with bar.prevent(Input.Changed):
                bar.value = text
        if not bar.has_focus:
            bar.display = bool(text)

    @on(SearchBar.Done)
    def _search_closed(self) -> None:
        bar = self.query_one(SearchBar)
        if not bar.value:
            bar.display = False
        self.active_pane.focus_default()

    def action_cycle_theme(self) -> None:
        """Next theme in THEMES."""
        themes = [t for t in THEMES if t in self.available_themes]
        index = themes.index(self.theme) if self.theme in themes else -1
        self.theme = themes[(index + 1) % len(themes)]
        self.notify(f"theme: {self.theme}", timeout=2)
        self.remember("ui.theme", self.theme)

    def binding_rows(self) -> list[BindingRow]:
        """Every binding with an id: global ones, then each composed tab's (`compose_all` for
        every tab's), then the modals'."""
        groups: list[tuple[str, Any, bool]] = [("global", self, False)]
        groups += [
            (tab.title, self._panes[tab.id], True) for tab in self.tabs if tab.id in self._panes
        ]
        rows = collect(groups, self._keymap)
        for title, where in MODALS:
            rows += declared(title, _modal(where).BINDINGS, self._keymap)
        return rows

    def action_inbox(self) -> None:
        """Open the approval inbox (the waiting requests, answered when the operator chooses)."""
        if self._inbox is not None or isinstance(self.screen, ModalScreen):
            return
        from tundra_tui.ui.modals.inbox import InboxModal

        inbox = self._inbox = InboxModal(self.services, arm_seconds=self.arm_seconds)
        self._shelved |= set(self.services.live.approvals)  # seen: no popup for them now

        def closed(_: None) -> None:
            self._inbox = None

        self.push_screen(inbox, closed)

    def action_mail(self) -> None:
        """Open the Mail view: threads per agent, receipts, compose and reply."""
        if self._mail is not None or isinstance(self.screen, ModalScreen):
            return
        from tundra_tui.ui.modals.mail import MailView

        view = self._mail = MailView(self.services)

        def closed(_: None) -> None:
            self._mail = None
            self.read_mail()  # what was read there is no longer unread

        self.push_screen(view, closed)

    @on(TitleBar.WaitingClicked)
    def _waiting_clicked(self) -> None:
        self.action_inbox()

    @on(TitleBar.MailClicked)
    def _mail_clicked(self) -> None:
        self.action_mail()

    async def on_event(self, event: events.Event) -> None:
        """Note when the operator types (a key answering the popup is not typing elsewhere)."""
        if isinstance(event, events.Key) and self.screen is not self._approval_modal:
            self.last_key = time.monotonic()
        if isinstance(event, events.Key | events.MouseDown):
            self._operator_input()
        await super().on_event(event)

    # ---- while you were away -----------------------------------------------------------------

    def _away_minutes(self) -> int:
        return int(self.services.config.get("ui.away_minutes"))

    def _operator_input(self) -> None:
        """A key or click: a return after `ui.away_minutes` without input recaps the absence;
        the store hears the operator is here once a minute."""
        now = self.services.now()
        left = self.presence.input(now, self._away_minutes())
        if left is not None:
            self.came_back(left, now)
        if self._welcomed and self.presence.due(now):
            self.note_operator_seen(now)

    def came_back(self, since: datetime, until: datetime) -> None:
        """Have the Dashboard lead with a recap of [since, until) (no focus moves)."""
        if "dashboard" in {tab.id for tab in self.tabs}:
            pane = self.pane("dashboard")
            came_back = getattr(pane, "came_back", None)
            if came_back is not None:
                came_back(since, until)

    @work(group="welcome", exit_on_error=False)
    async def welcome_back(self) -> None:
        """A new control room: recap since any control room last saw the operator here."""
        try:
            seen = await self.services.store.flags.operator_seen()
        except TundraError:
            seen = ""
        finally:
            self._welcomed = True  # from now on input is noted in the store
        if seen and self._away_minutes() > 0:
            with contextlib.suppress(ValueError):
                self.came_back(parse_iso(seen), self.started_at)

    @work(group="operator-seen", exit_on_error=False)
    async def note_operator_seen(self, now: datetime) -> None:
        """Tell the store the operator is here (a failure only delays the next recap's start)."""
        with contextlib.suppress(TundraError):
            await self.services.store.flags.set_operator_seen(iso(now))

    async def action_quit(self) -> None:
        """Quit, noting the operator's last presence first (within a second or two)."""
        with contextlib.suppress(TundraError, TimeoutError):
            await asyncio.wait_for(
                self.services.store.flags.set_operator_seen(iso(self.services.now())), 2
            )
        await super().action_quit()

    async def action_help(self) -> None:
        """List every binding: the current tab's first (at 80x24 the global keys alone fill
        the first screen), then the global ones, the other tabs' and the dialogs'."""
        await self.compose_all()
        from tundra_tui.ui.modals.help import HelpModal

        here = next((tab.title for tab in self.tabs if tab.id == self.current_tab), "")
        order = {here: 0, "global": 1}
        rows = sorted(self.binding_rows(), key=lambda row: order.get(row.group, 2))
        self.push_screen(HelpModal(rows))

    async def action_command_palette(self) -> None:  # type: ignore[override]
        """The palette, once every tab's pane is composed (it lists their actions). Keys are
        actions, and an action is awaited: keys typed after `:` reach the palette."""
        await self.compose_all()
        super().action_command_palette()

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """The palette: every action of every tab, reachable by name."""
        for row in self.binding_rows():
            if row.node is None or row.action == "command_palette":
                continue
            yield SystemCommand(
                f"{row.group}: {row.description}",
                f"key {row.key}  ·  id {row.id}",
                lambda row=row: self._run_row(row),
            )

    async def _run_row(self, row: BindingRow) -> None:
        tab = next((t for t in self.tabs if t.title == row.group), None)
        if tab is not None and tab.id != self.current_tab:
            self._show(tab.id)
        if row.node is not None:
            await self.run_action(row.action, row.node)

    # ---- the daemon ------------------------------------------------------------------------

    @work(exclusive=True, group="link", exit_on_error=False)
    async def follow_daemon(self) -> None:
        """Apply the daemon's events to the live model as they come."""
        async for event in self.services.link.events():
            try:
                change = self.services.live.apply(event)
            except Exception as error:  # one bad event must not end the stream
                self.notify(f"daemon event ignored: {_one_line(error)}", severity="warning")
                continue
            if isinstance(event, ChangedEvent):
                self._announced(event.what)
                continue
            if isinstance(event, LinkEvent) and self.daemon_stopped != event.stopped:
                self.daemon_stopped = not self.daemon_stopped
                self.refresh_bindings()
            try:
                self._on_live(change)
            except Exception as error:  # the stream goes on: see _on_live
                self.say_once("live", f"daemon event: {_one_line(error)}", "warning")
            if change.kind == "link" and self.services.live.connected and self.start_agents:
                self.start_agents = False
                self.start_configured_agents()

    @work(group="start-agents", exit_on_error=False)
    async def start_configured_agents(self) -> None:
        """Bring the town up, as `at up` does (`at tui --demo` does): the agents marked to
        start, and dispatch, which then hands out ready beads by itself."""
        try:
            reply = await self.services.link.call(Up())
        except TundraError as error:
            self.notify(_one_line(error), severity="error")
            return
        for name, why in reply.failed.items():
            line = visible(f"{name} did not start: {why}", single_line=True, limit=300)
            self.notify(line, severity="warning")

    def _on_live(self, change: Change) -> None:
        # Screen events come with every PTY read; tiles draw them from their RemoteScreen on
        # their own frame timer, so only the Agents pane hears of them (this is the hot
        # path): a grabbed tile paints its own at once, the echo of what the operator types.
        if change.kind == "screen":
            agents = self._panes.get("agents")
            if agents is not None and agents.is_mounted:
                agents.live_changed(change)
            return
        if change.kind == "ignored":
            return
        for pane in self.panes:
            if not pane.is_mounted:
                continue  # composed a moment ago (first show): it loads, live model and all
            try:
                pane.live_changed(change)
            except NoMatches:
                pass  # composed a moment ago, its children not mounted yet: it loads on show
            except Exception as error:
                # One pane's failure must not end the event stream: the whole town would
                # freeze on screen (states, tiles, approvals) while the daemon goes on.
                self.say_once("live", f"{pane.id}: {_one_line(error)}", "warning")
        live = self.services.live
        if change.kind == "link":
            if live.connected:
                self._said.pop("link", None)
                self._mark_stale("store")  # what changed while away was never announced
            elif self.daemon_stopped:
                key = display_keys(self._keymap.get("start-daemon", START_DAEMON_KEY))
                self.say_once(
                    "link",
                    f"{live.link_error}: {key} starts it again (or Start the daemon in the "
                    f"palette)",
                    "warning",
                )
            else:
                self.say_once("link", f"daemon: {live.link_error or 'gone'}", "warning")
        elif change.kind == "resync":
            # This client fell behind and missed events: what changed meanwhile (beads,
            # convoys, usage) was never announced to it.
            self._mark_stale("store")
        elif change.kind == "store":
            if live.store_error:
                self.say_once(
                    "store",
                    f"{live.store_pending} changes wait for the database and will be written "
                    f"when it can take them: {live.store_error}",
                    "warning",
                )
            elif self._said.pop("store", None) is not None:
                self.notify("the database took every waiting change", timeout=4)
        elif change.kind == "approval" and change.approval is not None:
            modal = self._approval_modal
            if modal is not None and modal.approval.id == change.approval:
                # Upgraded in place (the hook's exact words for the prompt on screen).
                modal.show(live.approvals[change.approval])
            else:
                self.queue_approval(change.approval)
        elif change.kind == "attention_bell":
            self.bell()  # once per agent and approval: the model says which finding rings
        elif change.kind == "approval_resolved":
            modal = self._approval_modal
            if modal is not None and modal.approval.id == change.approval:
                modal.dismiss(None)
        if change.kind in ("approval", "approval_resolved", "removed", "link", "snapshot"):
            self._shelved.intersection_update(live.approvals)
            if self._inbox is not None and self._inbox.is_mounted:
                self._inbox.sync()
            self.refresh_bindings()  # the key line offers the inbox while something waits
        self._tick()

    def action_start_daemon(self) -> None:
        """Start the daemon the operator stopped; the event stream reconnects at once."""
        self.start_daemon()

    @work(exclusive=True, group="start-daemon", exit_on_error=False)
    async def start_daemon(self) -> None:
        """Start the daemon (a no-op if one runs) and say how it went."""
        self.notify("starting the daemon…", timeout=3)
        try:
            pid = await self.services.link.start_daemon()
        except TundraError as error:
            self.notify(f"daemon: {_one_line(error)}", severity="error")
            return
        self.notify(f"daemon running (pid {pid})", timeout=3)

    @work(exclusive=True, group="brake", exit_on_error=False)
    async def read_brake(self) -> None:
        """Read the budgets, the override and paused accounts for the title bar (the same
        read as `at cost budget`), on a change that can move them and every BRAKE_INTERVAL."""
        from tundra_tui.config import load_config
        from tundra_tui.usage.reports import brake_report

        try:
            # Read afresh: `at config set` from a shell raises a budget without telling us.
            config = await asyncio.to_thread(load_config, self.services.town)
            brake = await brake_report(self.services.store, config, self.services.now())
        except TundraError as error:
            self.say_once("brake", f"budgets: {_one_line(error)}", "warning")
            return
        self.query_one(TitleBar).brake = brake
        self._tick()

    @work(exclusive=True, group="mail-count", exit_on_error=False)
    async def read_mail(self) -> None:
        """Count the operator's unread mail for the title bar, on a change that can move it."""
        try:
            unread = await self.services.store.mail.unread_count(OPERATOR)
        except TundraError as error:
            self.say_once("mail", f"mail: {_one_line(error)}", "warning")
            return
        self.query_one(TitleBar).mail = unread
        self._tick()

    def _tick(self) -> None:
        title = self.query_one(TitleBar)
        live = self.services.live
        title.states = [a.state for a in live.agents.values()]
        title.waiting = len(live.approvals)
        title.connected = live.connected
        title.clock = self.services.now().astimezone().strftime("%H:%M")
        title.now = iso(self.services.now())
        title.refresh_if_changed()

    def queue_approval(self, approval_id: int) -> None:
        """Queue the approval modal for a request (once); one modal at a time."""
        if self.approval_popup and approval_id not in self._queued:
            self._queued.add(approval_id)
            self._approvals.put_nowait(approval_id)

    @on(OpenApproval)
    def _open_approval(self, message: OpenApproval) -> None:
        """Open one request on demand (even with the popup off); never twice at once."""
        shown = self._approval_modal
        if shown is not None and shown.approval.id == message.approval_id:
            return
        self._asked.add(message.approval_id)  # shown without waiting for quiet, first
        if message.approval_id in self._queued:
            return
        self._queued.add(message.approval_id)
        self._approvals.put_nowait(message.approval_id)

    @work(exclusive=True, group="approvals", exit_on_error=False)
    async def serve_approvals(self) -> None:
        """Show queued approvals one after another; none is dropped, answered ones skip. One
        the operator did not ask for waits until they are not typing (`popup_gate`), and is
        left to the inbox once they have seen it there."""
        while True:
            approval_id = await self._approvals.get()
            later = False
            while approval_id not in self._asked and approval_id not in self._shelved:
                if approval_id not in self.services.live.approvals:
                    break
                now = time.monotonic()
                if not popup_gate.why_not(self, self.last_key, now, self.typing_pause):
                    break
                if self._asked:  # one the operator asked for (queued behind) comes first
                    self._approvals.put_nowait(approval_id)
                    later = True
                    break
                await asyncio.sleep(popup_gate.POLL_S)
            if later:
                continue
            asked = approval_id in self._asked
            self._queued.discard(approval_id)
            self._asked.discard(approval_id)
            approval = self.services.live.approvals.get(approval_id)
            if approval is None:
                continue  # answered elsewhere meanwhile
            if not asked and approval_id in self._shelved:
                continue  # seen in the inbox: it waits there
            from tundra_tui.ui.modals.approval import ApprovalModal  # (once) not at start

            modal = self._approval_modal = ApprovalModal(
                approval, arm_seconds=self.arm_seconds, actor=self.services.actor
            )
            try:
                answer = await self.push_screen_wait(modal)
            finally:
                self._approval_modal = None
            if answer is None:
                # "Later": the next request waits for a pause too, not pop up at once.
                self.last_key = time.monotonic()
            else:
                # The words on screen when the key was pressed: the daemon applies the
                # answer to them only, never to words that replaced them meanwhile.
                actor, seen = self.services.actor, modal.approval.subject
                request: Request = (
                    Approve(id=approval_id, actor=actor, seen=seen)
                    if answer
                    else Deny(id=approval_id, actor=actor, seen=seen)
                )
                sent = await self._send(
                    request, f"{'approved' if answer else 'denied'}: {approval.agent}"
                )
                if sent is None and approval_id in self.services.live.approvals:
                    self.queue_approval(approval_id)  # still waiting: show it again

    @on(DaemonRequest)
    def _daemon_request(self, message: DaemonRequest) -> None:
        self.run_worker(
            self._send(message.request, message.done),
            group="requests",
            exit_on_error=False,
        )

    async def _send(self, request: Request, done: str) -> Any:
        try:
            result = await self.services.link.call(request)
        except TundraError as error:
            op = request.to_wire()["op"]
            self.notify(f"{op}: {_one_line(error)}", severity="error")
            return None
        if done:
            self.notify(visible(done, single_line=True, limit=200), timeout=3)
        return result

    def data_changed(self, *whats: str) -> None:
        """Stored data changed (as a ChangedEvent names it, or "store" for anything): re-read
        the configuration if it was that, and reload the pane on show if it shows one of them
        (the others when shown). One change, one reload; a flood, one every RELOAD_GAP_S."""
        if "config" in whats:
            self._reload_config()
        if BRAKE_SHOWS.intersection(whats):
            self.read_brake()
        if MAIL_SHOWS.intersection(whats):
            self.read_mail()
        if self._mail is not None and self._mail.is_mounted:
            self._mail.changed(whats)
        pane = self.active_pane
        shown = [what for what in whats if what == "store" or what in pane.SHOWS]
        for what in shown:
            pane.changed(what)
        if shown:
            self._reload_soon(pane)
        for what in whats:
            self._mark_stale(what)

    @work(group="announced", exit_on_error=False)
    async def _announced(self, what: str) -> None:
        """A change the daemon announced: first note the store events it appended as seen
        (the file watcher then skips them), then reload what shows it."""
        news = await self._caught_up_now() if what in STORE_EVENTS else set()
        self.data_changed(what, *news)

    # ---- files ------------------------------------------------------------------------------

    @work(exclusive=True, group="watch", exit_on_error=False)
    async def follow_files(self) -> None:
        """Reload the active pane when others write the store (the CLI, an agent's `at done`).

        Usage is recorded by the daemon, and what the daemon changes for clients comes as its
        ChangedEvents: a batch that brings no store event newer than those is skipped.
        """
        await self._caught_up_now()
        from tundra_tui.ui.watcher import watch_town  # watchfiles: not for the first frame

        async for _touched in watch_town(self.services.town.db_path):
            # The daemon's ChangedEvent for its own write is on its way as the file changes:
            # give it the time to arrive first, so that the write causes one reload, not two.
            await asyncio.sleep(ANNOUNCE_GRACE_S)
            news = await self._caught_up_now()
            if news:
                self.data_changed(*sorted(news))
            self.store_batches += 1

    async def _caught_up_now(self) -> set[str]:
        """Note the newest store event as seen; what the events newer than the last one noted
        touched, as SHOWS names it: "events" (the log), and "beads", "convoys" or "agents" by
        their kinds; "store" (anything) when that cannot be told. The first look is news of
        nothing (the panes read the store then)."""
        events = self.services.store.events
        try:
            if not self._looked:
                self._events_seen, self._looked = await events.last_id(), True
                return set()
            news = await events.find(after_id=self._events_seen, limit=NEWS)
            if len(news) == NEWS:
                self._events_seen = max(self._events_seen, await events.last_id())
                return {"store"}
        except TundraError:
            return {"store"}  # cannot tell: reload, and the pane says what is wrong
        if not news:
            return set()
        self._events_seen = max(self._events_seen, news[-1].id)
        kinds = {event.kind.partition(".")[0] for event in news}
        return {"events"} | {EVENT_TOPICS[kind] for kind in kinds & EVENT_TOPICS.keys()}

    def say_once(self, source: str, message: str, severity: SeverityLevel = "error") -> None:
        """Notify, unless `source` already said exactly this (a busy town retries every batch:
        a locked store must not fill the screen with the same toast)."""
        if self._said.get(source) != message:
            self._said[source] = message
            self.notify(message, severity=severity)

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Every notification is plain text: they carry agent names, subjects and error lines,
        and markup in them could restyle, plant an action or crash the app."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    def _fatal_error(self) -> None:
        """A crash prints its traceback without local variables: they may hold config secrets."""
        self.bell()
        from rich.traceback import Traceback

        traceback = Traceback(show_locals=False, width=None)
        self._exit_renderables.append(
            Segments(self.console.render(traceback, self.console.options))
        )
        self._close_messages_no_wait()


def _one_line(error: BaseException) -> str:
    return visible(
        str(error).splitlines()[0] if str(error) else type(error).__name__,
        single_line=True,
        limit=300,
    )
