"""Versioned schema migrations. Append new migrations; never edit a released one."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Migration:
    """One step of the schema, applied in its own write transaction."""

    version: int
    description: str
    sql: str


_V1 = """
CREATE TABLE agents (
    name        TEXT PRIMARY KEY,
    role        TEXT NOT NULL,
    runtime     TEXT NOT NULL,
    model       TEXT NOT NULL DEFAULT '',
    state       TEXT NOT NULL DEFAULT 'stopped',
    pid         INTEGER,
    worktree    TEXT NOT NULL DEFAULT '',
    branch      TEXT NOT NULL DEFAULT '',
    exit_status INTEGER,
    evidence    TEXT NOT NULL DEFAULT '{}',
    last_screen TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE convoys (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT NOT NULL UNIQUE,
    description  TEXT NOT NULL DEFAULT '',
    status       TEXT NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'active', 'paused', 'completed')),
    created_at   TEXT NOT NULL,
    started_at   TEXT NOT NULL DEFAULT '',
    completed_at TEXT NOT NULL DEFAULT ''
);

CREATE TABLE beads (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    title       TEXT NOT NULL CHECK (title <> ''),
    description TEXT NOT NULL DEFAULT '',
    status      TEXT NOT NULL DEFAULT 'backlog'
                CHECK (status IN ('backlog', 'hooked', 'slung', 'review', 'done',
                                  'failed', 'escalated')),
    lane        TEXT NOT NULL DEFAULT 'standard'
                CHECK (lane IN ('critical', 'standard', 'experimental')),
    lane_rank   INTEGER GENERATED ALWAYS AS (
                    CASE lane WHEN 'critical' THEN 0 WHEN 'standard' THEN 1 ELSE 2 END
                ) VIRTUAL,
    priority    INTEGER NOT NULL DEFAULT 2 CHECK (priority BETWEEN 0 AND 4),
    assignee    TEXT NOT NULL DEFAULT '',
    convoy_id   INTEGER REFERENCES convoys(id),
    branch      TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    hooked_at   TEXT NOT NULL DEFAULT '',
    slung_at    TEXT NOT NULL DEFAULT '',
    done_at     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX beads_by_queue ON beads (status, lane_rank, priority, created_at, id);
CREATE INDEX beads_by_assignee ON beads (assignee, status);
CREATE INDEX beads_by_convoy ON beads (convoy_id, status);

CREATE TABLE bead_deps (
    bead_id    INTEGER NOT NULL REFERENCES beads(id) ON DELETE CASCADE,
    blocker_id INTEGER NOT NULL REFERENCES beads(id) ON DELETE CASCADE,
    PRIMARY KEY (bead_id, blocker_id),
    CHECK (bead_id != blocker_id)
) WITHOUT ROWID;
CREATE INDEX bead_deps_by_blocker ON bead_deps (blocker_id);

CREATE TABLE bead_labels (
    bead_id INTEGER NOT NULL REFERENCES beads(id) ON DELETE CASCADE,
    label   TEXT NOT NULL,
    PRIMARY KEY (bead_id, label)
) WITHOUT ROWID;
CREATE INDEX bead_labels_by_label ON bead_labels (label);

CREATE TABLE mail (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    sender     TEXT NOT NULL,
    recipient  TEXT NOT NULL,
    subject    TEXT NOT NULL DEFAULT '',
    body       TEXT NOT NULL,
    urgent     INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    read_at    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX mail_by_recipient ON mail (recipient, read_at, id);

CREATE TABLE events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        TEXT NOT NULL,
    actor     TEXT NOT NULL,
    kind      TEXT NOT NULL,
    bead_id   INTEGER,
    agent     TEXT NOT NULL DEFAULT '',
    convoy_id INTEGER,
    data      TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX events_by_bead ON events (bead_id, id);
CREATE INDEX events_by_agent ON events (agent, id);
CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;

CREATE TABLE metrics (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    at                 TEXT NOT NULL,
    agent              TEXT NOT NULL DEFAULT '',
    runtime            TEXT NOT NULL DEFAULT '',
    model              TEXT NOT NULL DEFAULT '',
    bead_id            INTEGER,
    input_tokens       INTEGER NOT NULL DEFAULT 0 CHECK (input_tokens >= 0),
    output_tokens      INTEGER NOT NULL DEFAULT 0 CHECK (output_tokens >= 0),
    cache_read_tokens  INTEGER NOT NULL DEFAULT 0 CHECK (cache_read_tokens >= 0),
    cache_write_tokens INTEGER NOT NULL DEFAULT 0 CHECK (cache_write_tokens >= 0),
    cost_usd           REAL NOT NULL DEFAULT 0 CHECK (cost_usd >= 0),
    source_key         TEXT UNIQUE
);
CREATE INDEX metrics_by_time ON metrics (at);
CREATE INDEX metrics_by_agent ON metrics (agent, at);

CREATE TABLE kpi_snapshots (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    at              TEXT NOT NULL,
    beads_active    INTEGER NOT NULL DEFAULT 0,
    beads_done      INTEGER NOT NULL DEFAULT 0,
    beads_failed    INTEGER NOT NULL DEFAULT 0,
    agents_active   INTEGER NOT NULL DEFAULT 0,
    agents_idle     INTEGER NOT NULL DEFAULT 0,
    agents_awaiting INTEGER NOT NULL DEFAULT 0,
    convoys_active  INTEGER NOT NULL DEFAULT 0,
    cost_today_usd  REAL NOT NULL DEFAULT 0,
    tokens_today    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX kpi_snapshots_by_time ON kpi_snapshots (at);

CREATE TABLE approvals (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    agent      TEXT NOT NULL,
    runtime    TEXT NOT NULL,
    tool       TEXT NOT NULL DEFAULT '',
    subject    TEXT NOT NULL,
    cwd        TEXT NOT NULL DEFAULT '',
    source     TEXT NOT NULL CHECK (source IN ('hook', 'screen')),
    evidence   TEXT NOT NULL DEFAULT '{}',
    status     TEXT NOT NULL DEFAULT 'pending'
               CHECK (status IN ('pending', 'approved', 'denied', 'expired')),
    created_at TEXT NOT NULL,
    decided_at TEXT NOT NULL DEFAULT '',
    decided_by TEXT NOT NULL DEFAULT ''
);
CREATE INDEX approvals_by_status ON approvals (status, id);
"""

_V2 = """
CREATE INDEX beads_by_done ON beads (status, done_at, id);

CREATE TABLE bead_counts (
    status TEXT PRIMARY KEY,
    n      INTEGER NOT NULL DEFAULT 0 CHECK (n >= 0)
) WITHOUT ROWID;
INSERT INTO bead_counts (status, n)
    SELECT value, 0 FROM json_each(
        '["backlog","hooked","slung","review","done","failed","escalated"]');
UPDATE bead_counts SET n = (SELECT count(*) FROM beads WHERE beads.status = bead_counts.status);
CREATE TRIGGER bead_counts_insert AFTER INSERT ON beads
BEGIN UPDATE bead_counts SET n = n + 1 WHERE status = NEW.status; END;
CREATE TRIGGER bead_counts_delete AFTER DELETE ON beads
BEGIN UPDATE bead_counts SET n = n - 1 WHERE status = OLD.status; END;
CREATE TRIGGER bead_counts_update AFTER UPDATE OF status ON beads
WHEN OLD.status != NEW.status
BEGIN
    UPDATE bead_counts SET n = n - 1 WHERE status = OLD.status;
    UPDATE bead_counts SET n = n + 1 WHERE status = NEW.status;
END;
"""
"""The board's questions in constant time: the Done column is read newest-first through an
index instead of sorting every finished bead, and per-status counts are kept by triggers
instead of scanning the table on every refresh (100k beads: 120 ms -> a few ms)."""

_V3 = """
ALTER TABLE agents ADD COLUMN removed_at TEXT NOT NULL DEFAULT '';
"""
"""An agent taken out of tundra.toml while it still runs or holds work keeps its row (the
daemon records its state; its beads name it) but leaves every list and count: `removed_at`
says since when. Rows nothing refers to any more are deleted instead."""

_V4 = """
CREATE TABLE dispatches (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    bead_id      INTEGER NOT NULL REFERENCES beads(id),
    agent        TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('polecat', 'crew', 'sling')),
    state        TEXT NOT NULL DEFAULT 'claimed'
                 CHECK (state IN ('claimed', 'slung', 'delivered', 'closed')),
    outcome      TEXT NOT NULL DEFAULT '',
    reason       TEXT NOT NULL DEFAULT '',
    branch       TEXT NOT NULL DEFAULT '',
    worktree     TEXT NOT NULL DEFAULT '',
    ready_at     TEXT NOT NULL,
    claimed_at   TEXT NOT NULL,
    slung_at     TEXT NOT NULL DEFAULT '',
    delivered_at TEXT NOT NULL DEFAULT '',
    closed_at    TEXT NOT NULL DEFAULT '',
    attempts     INTEGER NOT NULL DEFAULT 0,
    nudges       INTEGER NOT NULL DEFAULT 0,
    reported_at  TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX dispatches_open_bead ON dispatches (bead_id) WHERE state != 'closed';
CREATE UNIQUE INDEX dispatches_open_agent ON dispatches (agent) WHERE state != 'closed';
CREATE INDEX dispatches_by_bead ON dispatches (bead_id, id);

CREATE TABLE bead_notes (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    bead_id    INTEGER NOT NULL REFERENCES beads(id) ON DELETE CASCADE,
    author     TEXT NOT NULL,
    body       TEXT NOT NULL CHECK (body <> ''),
    created_at TEXT NOT NULL
);
CREATE INDEX bead_notes_by_bead ON bead_notes (bead_id, id);

CREATE TABLE town_flags (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    reason     TEXT NOT NULL DEFAULT '',
    updated_at TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
INSERT INTO town_flags (key, value) VALUES ('up', '0'), ('dispatch_paused', '0');

CREATE TABLE deliveries (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    agent       TEXT NOT NULL,
    via         TEXT NOT NULL CHECK (via IN ('typed', 'stop_hook')),
    started_at  TEXT NOT NULL,
    after_event INTEGER NOT NULL,
    taken_at    TEXT NOT NULL DEFAULT '',
    outcome     TEXT NOT NULL DEFAULT ''
);
ALTER TABLE mail ADD COLUMN delivery_id INTEGER REFERENCES deliveries(id);
ALTER TABLE mail ADD COLUMN delivered_at TEXT NOT NULL DEFAULT '';
CREATE INDEX mail_undelivered ON mail (recipient, delivered_at, id);

ALTER TABLE agents ADD COLUMN wanted INTEGER NOT NULL DEFAULT 0;
"""
"""The town takes work by itself. `dispatches` records each hand-over of a bead to an
agent; its two partial unique indexes (one open dispatch per bead, one per agent) are what
make "never sling twice" hold across crashes. `bead_notes` survive re-dispatch.
`town_flags` holds whether the town is up and dispatch paused, read inside the claim's
transaction. `deliveries` reserve mail while it is typed between turns, and
`after_event` lets a restart tell from the agent's events whether it was taken.
`agents.wanted` brings an agent back on `at up`."""

_V5 = """
CREATE TABLE merge_attempts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    bead_id       INTEGER NOT NULL REFERENCES beads(id),
    n             INTEGER NOT NULL,
    agent         TEXT NOT NULL DEFAULT '',
    branch        TEXT NOT NULL,
    branch_tip    TEXT NOT NULL,
    archive_ref   TEXT NOT NULL,
    commits       TEXT NOT NULL DEFAULT '[]',
    strategy      TEXT NOT NULL CHECK (strategy IN ('rebase', 'merge')),
    target        TEXT NOT NULL,
    target_before TEXT NOT NULL,
    result_commit TEXT NOT NULL DEFAULT '',
    state         TEXT NOT NULL DEFAULT 'running'
                  CHECK (state IN ('running', 'merging', 'closed')),
    outcome       TEXT NOT NULL DEFAULT '' CHECK (outcome IN ('', 'merged', 'conflict',
                  'gate_failed', 'target_moved', 'withdrawn', 'interrupted', 'error')),
    reason        TEXT NOT NULL DEFAULT '',
    conflicts     TEXT NOT NULL DEFAULT '[]',
    counted       INTEGER NOT NULL DEFAULT 0,
    started_at    TEXT NOT NULL,
    finished_at   TEXT NOT NULL DEFAULT '',
    cleaned_at    TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX merge_attempts_open ON merge_attempts (bead_id) WHERE state != 'closed';
CREATE UNIQUE INDEX merge_attempts_n ON merge_attempts (bead_id, n);
CREATE INDEX merge_attempts_recent ON merge_attempts (finished_at, id);

CREATE TABLE gate_results (
    attempt_id  INTEGER NOT NULL REFERENCES merge_attempts(id),
    idx         INTEGER NOT NULL,
    command     TEXT NOT NULL,
    ok          INTEGER,
    exit_code   INTEGER,
    timed_out   INTEGER NOT NULL DEFAULT 0,
    seconds     REAL NOT NULL DEFAULT 0,
    tail        TEXT NOT NULL DEFAULT '',
    log_path    TEXT NOT NULL DEFAULT '',
    started_at  TEXT NOT NULL,
    finished_at TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (attempt_id, idx)
) WITHOUT ROWID;

CREATE TABLE target_checks (
    commit_sha TEXT PRIMARY KEY,
    green      INTEGER NOT NULL,
    attempt_id INTEGER,
    detail     TEXT NOT NULL DEFAULT '',
    checked_at TEXT NOT NULL
) WITHOUT ROWID;

ALTER TABLE beads ADD COLUMN grade TEXT NOT NULL DEFAULT ''
    CHECK (grade IN ('', 'submitted', 'verified', 'merged'));
ALTER TABLE beads ADD COLUMN merged_commit TEXT NOT NULL DEFAULT '';
ALTER TABLE beads ADD COLUMN submitted_at TEXT NOT NULL DEFAULT '';
UPDATE beads SET grade = 'submitted', submitted_at = updated_at WHERE status = 'review';
CREATE INDEX beads_by_review ON beads (status, lane_rank, priority, submitted_at, id);
INSERT INTO town_flags (key, value) VALUES ('refinery_paused', '0');
"""
"""The refinery. `merge_attempts` records each try at landing a submitted branch: the tip
submitted (kept under `archive_ref`, so no commit is ever lost), the commits, the target
before, the result the gates passed, and how it ended; one open attempt per bead (the
partial unique index). `gate_results` keep each gate's verdict and output tail;
`target_checks` remember which target commits are known green, so the target is gated
only after outside commits. Beads gain their evidence grade and the merged commit;
`submitted_at` orders the queue."""

_V6 = """
DELETE FROM metrics WHERE source_key LIKE 'claude:%';
ALTER TABLE metrics ADD COLUMN role TEXT NOT NULL DEFAULT '';
ALTER TABLE metrics ADD COLUMN session TEXT NOT NULL DEFAULT '';
ALTER TABLE metrics ADD COLUMN dispatch_id INTEGER;
ALTER TABLE metrics ADD COLUMN cache_write_1h_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE metrics ADD COLUMN priced INTEGER NOT NULL DEFAULT 1;
ALTER TABLE metrics ADD COLUMN price_source TEXT NOT NULL DEFAULT '';
ALTER TABLE metrics ADD COLUMN logged_cost_usd REAL;
ALTER TABLE metrics ADD COLUMN source_id INTEGER;
ALTER TABLE metrics ADD COLUMN provider TEXT NOT NULL DEFAULT '';
CREATE INDEX metrics_by_dispatch ON metrics (dispatch_id) WHERE dispatch_id IS NOT NULL;
CREATE INDEX metrics_by_bead ON metrics (bead_id, at) WHERE bead_id IS NOT NULL;
CREATE INDEX metrics_by_session ON metrics (session, runtime);

CREATE TABLE usage_hourly (
    hour               TEXT NOT NULL,
    agent              TEXT NOT NULL,
    role               TEXT NOT NULL,
    runtime            TEXT NOT NULL,
    model              TEXT NOT NULL,
    bead_id            INTEGER NOT NULL DEFAULT 0,
    dispatch_id        INTEGER NOT NULL DEFAULT 0,
    samples            INTEGER NOT NULL DEFAULT 0,
    input_tokens       INTEGER NOT NULL DEFAULT 0,
    output_tokens      INTEGER NOT NULL DEFAULT 0,
    cache_read_tokens  INTEGER NOT NULL DEFAULT 0,
    cache_write_tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd           REAL NOT NULL DEFAULT 0,
    unpriced_samples   INTEGER NOT NULL DEFAULT 0,
    unpriced_tokens    INTEGER NOT NULL DEFAULT 0,
    logged_cost_usd    REAL NOT NULL DEFAULT 0,
    logged_samples     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (hour, agent, role, runtime, model, bead_id, dispatch_id)
) WITHOUT ROWID;
CREATE INDEX usage_hourly_by_bead ON usage_hourly (bead_id, hour);

CREATE TRIGGER metrics_hourly_insert AFTER INSERT ON metrics
BEGIN
    INSERT INTO usage_hourly (hour, agent, role, runtime, model, bead_id, dispatch_id,
        samples, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd,
        unpriced_samples, unpriced_tokens, logged_cost_usd, logged_samples)
    VALUES (substr(NEW.at, 1, 13), NEW.agent, NEW.role, NEW.runtime, NEW.model,
        coalesce(NEW.bead_id, 0), coalesce(NEW.dispatch_id, 0),
        1, NEW.input_tokens, NEW.output_tokens, NEW.cache_read_tokens,
        NEW.cache_write_tokens, NEW.cost_usd, 1 - NEW.priced,
        CASE WHEN NEW.priced THEN 0 ELSE NEW.input_tokens + NEW.output_tokens
            + NEW.cache_read_tokens + NEW.cache_write_tokens END,
        coalesce(NEW.logged_cost_usd, 0), NEW.logged_cost_usd IS NOT NULL)
    ON CONFLICT (hour, agent, role, runtime, model, bead_id, dispatch_id) DO UPDATE SET
        samples = samples + excluded.samples,
        input_tokens = input_tokens + excluded.input_tokens,
        output_tokens = output_tokens + excluded.output_tokens,
        cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,
        cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens,
        cost_usd = cost_usd + excluded.cost_usd,
        unpriced_samples = unpriced_samples + excluded.unpriced_samples,
        unpriced_tokens = unpriced_tokens + excluded.unpriced_tokens,
        logged_cost_usd = logged_cost_usd + excluded.logged_cost_usd,
        logged_samples = logged_samples + excluded.logged_samples;
END;
CREATE TRIGGER metrics_hourly_update AFTER UPDATE OF at, agent, role, runtime, model, bead_id,
    dispatch_id, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd,
    priced, price_source, logged_cost_usd ON metrics
BEGIN
    UPDATE usage_hourly SET
        samples = samples - 1,
        input_tokens = input_tokens - OLD.input_tokens,
        output_tokens = output_tokens - OLD.output_tokens,
        cache_read_tokens = cache_read_tokens - OLD.cache_read_tokens,
        cache_write_tokens = cache_write_tokens - OLD.cache_write_tokens,
        cost_usd = cost_usd - OLD.cost_usd,
        unpriced_samples = unpriced_samples - (1 - OLD.priced),
        unpriced_tokens = unpriced_tokens - CASE WHEN OLD.priced THEN 0 ELSE OLD.input_tokens
            + OLD.output_tokens + OLD.cache_read_tokens + OLD.cache_write_tokens END,
        logged_cost_usd = logged_cost_usd - coalesce(OLD.logged_cost_usd, 0),
        logged_samples = logged_samples - (OLD.logged_cost_usd IS NOT NULL)
    WHERE hour = substr(OLD.at, 1, 13) AND agent = OLD.agent AND role = OLD.role
        AND runtime = OLD.runtime AND model = OLD.model AND bead_id = coalesce(OLD.bead_id, 0)
        AND dispatch_id = coalesce(OLD.dispatch_id, 0);
    DELETE FROM usage_hourly WHERE samples <= 0 AND hour = substr(OLD.at, 1, 13)
        AND agent = OLD.agent AND role = OLD.role AND runtime = OLD.runtime AND model = OLD.model
        AND bead_id = coalesce(OLD.bead_id, 0) AND dispatch_id = coalesce(OLD.dispatch_id, 0);
    INSERT INTO usage_hourly (hour, agent, role, runtime, model, bead_id, dispatch_id,
        samples, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd,
        unpriced_samples, unpriced_tokens, logged_cost_usd, logged_samples)
    VALUES (substr(NEW.at, 1, 13), NEW.agent, NEW.role, NEW.runtime, NEW.model,
        coalesce(NEW.bead_id, 0), coalesce(NEW.dispatch_id, 0),
        1, NEW.input_tokens, NEW.output_tokens, NEW.cache_read_tokens,
        NEW.cache_write_tokens, NEW.cost_usd, 1 - NEW.priced,
        CASE WHEN NEW.priced THEN 0 ELSE NEW.input_tokens + NEW.output_tokens
            + NEW.cache_read_tokens + NEW.cache_write_tokens END,
        coalesce(NEW.logged_cost_usd, 0), NEW.logged_cost_usd IS NOT NULL)
    ON CONFLICT (hour, agent, role, runtime, model, bead_id, dispatch_id) DO UPDATE SET
        samples = samples + excluded.samples,
        input_tokens = input_tokens + excluded.input_tokens,
        output_tokens = output_tokens + excluded.output_tokens,
        cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,
        cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens,
        cost_usd = cost_usd + excluded.cost_usd,
        unpriced_samples = unpriced_samples + excluded.unpriced_samples,
        unpriced_tokens = unpriced_tokens + excluded.unpriced_tokens,
        logged_cost_usd = logged_cost_usd + excluded.logged_cost_usd,
        logged_samples = logged_samples + excluded.logged_samples;
END;
CREATE TRIGGER metrics_hourly_delete AFTER DELETE ON metrics
BEGIN
    UPDATE usage_hourly SET
        samples = samples - 1,
        input_tokens = input_tokens - OLD.input_tokens,
        output_tokens = output_tokens - OLD.output_tokens,
        cache_read_tokens = cache_read_tokens - OLD.cache_read_tokens,
        cache_write_tokens = cache_write_tokens - OLD.cache_write_tokens,
        cost_usd = cost_usd - OLD.cost_usd,
        unpriced_samples = unpriced_samples - (1 - OLD.priced),
        unpriced_tokens = unpriced_tokens - CASE WHEN OLD.priced THEN 0 ELSE OLD.input_tokens
            + OLD.output_tokens + OLD.cache_read_tokens + OLD.cache_write_tokens END,
        logged_cost_usd = logged_cost_usd - coalesce(OLD.logged_cost_usd, 0),
        logged_samples = logged_samples - (OLD.logged_cost_usd IS NOT NULL)
    WHERE hour = substr(OLD.at, 1, 13) AND agent = OLD.agent AND role = OLD.role
        AND runtime = OLD.runtime AND model = OLD.model AND bead_id = coalesce(OLD.bead_id, 0)
        AND dispatch_id = coalesce(OLD.dispatch_id, 0);
    DELETE FROM usage_hourly WHERE samples <= 0 AND hour = substr(OLD.at, 1, 13)
        AND agent = OLD.agent AND role = OLD.role AND runtime = OLD.runtime AND model = OLD.model
        AND bead_id = coalesce(OLD.bead_id, 0) AND dispatch_id = coalesce(OLD.dispatch_id, 0);
END;
INSERT INTO usage_hourly (hour, agent, role, runtime, model, bead_id, dispatch_id,
    samples, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd,
    unpriced_samples, unpriced_tokens, logged_cost_usd, logged_samples)
SELECT substr(at, 1, 13), agent, role, runtime, model, coalesce(bead_id, 0),
    coalesce(dispatch_id, 0), count(*), sum(input_tokens), sum(output_tokens),
    sum(cache_read_tokens), sum(cache_write_tokens), sum(cost_usd), sum(1 - priced),
    sum(CASE WHEN priced THEN 0 ELSE input_tokens + output_tokens + cache_read_tokens
        + cache_write_tokens END),
    coalesce(sum(logged_cost_usd), 0), count(logged_cost_usd)
FROM metrics GROUP BY 1, 2, 3, 4, 5, 6, 7;

CREATE TABLE agent_runs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    agent        TEXT NOT NULL,
    runtime      TEXT NOT NULL,
    role         TEXT NOT NULL,
    account      TEXT NOT NULL,
    cwd          TEXT NOT NULL,
    pid          INTEGER,
    roots        TEXT NOT NULL DEFAULT '{}',
    session_hint TEXT NOT NULL DEFAULT '',
    started_at   TEXT NOT NULL,
    ended_at     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX agent_runs_by_agent ON agent_runs (agent, started_at);

CREATE TABLE usage_sources (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    runtime    TEXT NOT NULL,
    agent      TEXT NOT NULL,
    path       TEXT NOT NULL UNIQUE,
    run_id     INTEGER REFERENCES agent_runs(id),
    device     INTEGER NOT NULL DEFAULT 0,
    inode      INTEGER NOT NULL DEFAULT 0,
    head       BLOB NOT NULL DEFAULT x'',
    offset     INTEGER NOT NULL DEFAULT 0,
    skipping   INTEGER NOT NULL DEFAULT 0,
    state      TEXT NOT NULL DEFAULT '{}',
    bad_lines  INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL
);

CREATE TABLE logged_costs (
    runtime       TEXT NOT NULL,
    session       TEXT NOT NULL,
    agent         TEXT NOT NULL,
    cost_usd      REAL NOT NULL,
    unknown_model INTEGER NOT NULL DEFAULT 0,
    at            TEXT NOT NULL,
    PRIMARY KEY (runtime, session)
) WITHOUT ROWID;

CREATE TABLE account_pauses (
    account      TEXT PRIMARY KEY,
    runtime      TEXT NOT NULL,
    agent        TEXT NOT NULL,
    until        TEXT NOT NULL,
    shown        TEXT NOT NULL DEFAULT '',
    reset_parsed INTEGER NOT NULL DEFAULT 0,
    since        TEXT NOT NULL,
    cleared_at   TEXT NOT NULL DEFAULT '',
    cleared_by   TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;

ALTER TABLE kpi_snapshots ADD COLUMN window_seconds INTEGER NOT NULL DEFAULT 0;
ALTER TABLE kpi_snapshots ADD COLUMN done_window INTEGER NOT NULL DEFAULT 0;
ALTER TABLE kpi_snapshots ADD COLUMN failed_window INTEGER NOT NULL DEFAULT 0;
ALTER TABLE kpi_snapshots ADD COLUMN agents_by_state TEXT NOT NULL DEFAULT '{}';
ALTER TABLE kpi_snapshots ADD COLUMN burn_usd_hour REAL NOT NULL DEFAULT 0;
ALTER TABLE kpi_snapshots ADD COLUMN unpriced_tokens_today INTEGER NOT NULL DEFAULT 0;
INSERT INTO town_flags (key, value) VALUES ('budget_override_until', ''), ('price_book', '');
"""
"""Costs from the agents' own logs. Legacy `claude:` samples (only ever read from the
demo's `.tundra/usage`, which the first v6 start re-reads from byte 0 with new keys) go.
`metrics` gains who (role), which attempt (`dispatch_id`), how it was priced (`priced` 0
means cost unknown, never $0; `price_source`) and the CLI's own figure. `usage_hourly` is
a rollup kept exact by triggers (insert adds, update moves, delete subtracts), so `at cost`
stays fast on a year of samples. `usage_sources` keep each followed log's cursor, written
in the samples' transaction; `agent_runs` tell whose log is whose; `logged_costs` hold a
CLI's cumulative session cost; `account_pauses` hold rate-limit pauses per account.
`town_flags` gain the budget override and the price book the rows were priced with
('' re-prices every row on the first start)."""

_V7 = """
ALTER TABLE kpi_snapshots ADD COLUMN burn_unpriced_tokens INTEGER NOT NULL DEFAULT 0;
"""
"""A KPI snapshot keeps the unpriced part of its burn rate, as it keeps today's
(`unpriced_tokens_today`), so the Analytics tab says "at least" as the Costs tab does.
Snapshots taken before read 0."""

_V8 = """
CREATE INDEX dispatches_by_agent ON dispatches (agent, closed_at);
CREATE INDEX events_hooks_by_agent ON events (agent, at) WHERE kind = 'bead.hook';
"""
"""Attribution reads only the spans that overlap a batch's time: an agent's dispatches by
when they closed (open ones have ''), and its hooks by when they were made."""

_V9 = """
CREATE TABLE approval_rules (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    agent      TEXT NOT NULL,
    tool       TEXT NOT NULL DEFAULT '',
    subject    TEXT NOT NULL,
    digest     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    revoked_at TEXT NOT NULL DEFAULT '',
    revoked_by TEXT NOT NULL DEFAULT ''
);
CREATE INDEX approval_rules_live ON approval_rules (agent, digest) WHERE revoked_at = '';
"""
"""The operator's always-allow rules: an agent and the exact words of a command (`digest`
of them; `subject` is shown, secrets redacted). Revoked rules stay for the audit trail."""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "beads, agents, convoys, mail, events, metrics, kpi snapshots, approvals", _V1),
    Migration(2, "index for the done column; per-status bead counts kept by triggers", _V2),
    Migration(3, "agents removed from tundra.toml leave lists while still referenced", _V3),
    Migration(4, "dispatches, bead notes, town flags, mail deliveries, wanted agents", _V4),
    Migration(5, "merge attempts, gate results, target checks, bead grades", _V5),
    Migration(
        6,
        "usage attribution and prices, log sources, agent runs, hourly usage, account pauses, "
        "kpi fields",
        _V6,
    ),
    Migration(7, "kpi snapshots keep the unpriced tokens of their burn rate", _V7),
    Migration(8, "dispatches by agent and close time, hooks by agent and time", _V8),
    Migration(9, "the operator's always-allow rules for approvals", _V9),
)

SCHEMA_VERSION = MIGRATIONS[-1].version
"""The newest schema this build understands; a database above it is refused."""
