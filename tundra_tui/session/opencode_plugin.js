// auto-tundra's OpenCode plugin: reports the agent's state to its daemon.
//
// Loaded per run through OPENCODE_CONFIG_CONTENT (the user's own config files are
// never written). It only reports: approvals are still answered on the screen.
// Each report runs the command in TUNDRA_OPENCODE_HOOK (a JSON array, `at hook-event`)
// with the event's type and its properties as JSON, one at a time and in order, so
// the daemon never hears an older state after a newer one. A status is reported only
// when it changes, and only for top-level sessions: a subagent's session going idle
// says nothing about the agent's own turn.
import { spawn } from "node:child_process";

const REPORTED = new Set(["session.status", "session.idle", "permission.asked", "permission.replied"]);
const TIMEOUT_MS = 10000;

function report(command, type, properties) {
  return new Promise((resolve) => {
    let child;
    try {
      child = spawn(command[0], [...command.slice(1), type, JSON.stringify(properties)], {
        stdio: "ignore",
      });
    } catch {
      resolve();
      return;
    }
    const timer = setTimeout(() => child.kill(), TIMEOUT_MS);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    child.on("error", done);
    child.on("exit", done);
  });
}

export const TundraReport = async () => {
  let command;
  try {
    command = JSON.parse(process.env.TUNDRA_OPENCODE_HOOK || "[]");
  } catch {
    command = [];
  }
  if (!Array.isArray(command) || command.length === 0) return {};
  const children = new Set();
  const status = new Map();
  let queue = Promise.resolve();
  const send = (type, properties) => {
    queue = queue.then(() => report(command, type, properties));
  };
  return {
    event: async ({ event }) => {
      const type = event?.type;
      const properties = event?.properties ?? {};
      if (type === "session.created" || type === "session.updated") {
        const info = properties.info ?? {};
        if (info.parentID && info.id) children.add(info.id);
        return;
      }
      if (!REPORTED.has(type)) return;
      const session = properties.sessionID;
      if (type === "session.status" || type === "session.idle") {
        if (children.has(session)) return;
        const now = type === "session.idle" ? "idle" : properties.status?.type;
        if (status.get(session) === now) return;
        status.set(session, now);
      }
      send(type, properties);
    },
  };
};
