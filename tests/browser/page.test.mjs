// The newcomer's page (web/, scripts/web.lua) in a real browser: headless
// Chromium, Debian's /usr/bin/chromium, driven by playwright-core from npm
// (this folder's package.json; `make deps` runs `npm ci` here). Run by
// ctest (label `browser`) with NCSERVER (the binary) and NC_SOURCE_DIR (the
// repository) set; by hand, from the repository:
//
//   (cd tests/browser && npm ci)
//   NCSERVER=build/ncserver node tests/browser/page.test.mjs
//
// It starts the real server on 127.0.0.1 port 0 with a temporary database
// (ready when stderr says `listening on http://HOST:PORT`), opens the page
// and does what a newcomer does: reads the movie list, subscribes to a
// movie, moves its premiere in the page and sees the notification; sees
// the notification for a change made by someone else (a plain HTTP PATCH
// from here); does not see one for a movie it did not subscribe to; sees
// the server's error text. Any uncaught page error or console error fails
// the run, except the one 400 the error step asks for. Waits are for
// something to appear, with a deadline; nothing sleeps.
//
// Node's own test runner (node:test), Node 18 or later.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SOURCE_DIR = path.resolve(process.env.NC_SOURCE_DIR || path.join(HERE, "..", ".."));
const BINARY = process.env.NCSERVER || path.join(SOURCE_DIR, "build", "ncserver");
const CHROMIUM = process.env.NC_CHROMIUM || "/usr/bin/chromium";

if (!fs.existsSync(BINARY)) {
  console.error(`server binary not found: ${BINARY} (set NCSERVER)`);
  process.exit(1);
}

if (!fs.existsSync(CHROMIUM)) {
  console.error(`Chromium not found: ${CHROMIUM} (apt-get install chromium, or set NC_CHROMIUM)`);
  process.exit(1);
}

// An AddressSanitizer build is about 3x slower: deadlines stretch, as in
// tests/e2e/ncfixture.py. They are upper bounds; nothing waits them out.
const SLOW = Number(process.env.NC_E2E_SLOW
  || (fs.readFileSync(BINARY).includes("__asan_init") ? 3 : 1));
const STARTUP_MS = 30000 * SLOW;
const STOP_MS = 20000 * SLOW;
// How long a notification may take to show up before the test calls it
// lost. The goal is "within a second"; this is only the deadline.
const APPEAR_MS = 5000 * SLOW;

const LISTENING = /listening on http:\/\/(\[[^\]]+\]|[^\s:/\]]+):(\d+)/;

let chromium;
try {
  ({ chromium } = await import("playwright-core"));
} catch (err) {
  console.error(`playwright-core is not installed in ${HERE}: run \`make deps\` `
    + `or \`npm ci\` there (${err.message})`);
  process.exit(1);
}

// A Lua string literal for the --config file.
function luaString(s) {
  if (/[\x00-\x1f]/.test(s)) {
    throw new Error(`path with a control character: ${JSON.stringify(s)}`);
  }
  return `"${s.replace(/[\\"]/g, "\\$&")}"`;
}

// ---- the server ---------------------------------------------------------------

// A signal ends the run through process.exit, so the "exit" handler below
// stops the server.
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => process.exit(1));
}
// A reader that goes away (`| head`) must not crash the run past its
// cleanup: the steps go on unseen and after() still stops the server.
process.stdout.on("error", () => {});

const server = { child: null, log: "", base: null, tmp: null, exit: null };

async function startServer() {
  server.tmp = fs.mkdtempSync(path.join(os.tmpdir(), "nc-browser-"));
  // The scripts, migrations and page of the tree under test, whatever
  // source directory the binary was built from.
  const config = path.join(server.tmp, "config.lua");
  fs.writeFileSync(config, [
    `sql = ${luaString(path.join(SOURCE_DIR, "sql"))}`,
    `web = ${luaString(path.join(SOURCE_DIR, "web"))}`,
    "",
  ].join("\n"));
  const child = spawn(BINARY, [
    "--listen", "127.0.0.1:0",
    "--db", path.join(server.tmp, "nc.db"),
    "--scripts", path.join(SOURCE_DIR, "scripts"),
    "--config", config,
  ], { stdio: ["ignore", "ignore", "pipe"] });
  server.child = child;
  // Should this process end before after() runs (a crash, a closed pipe,
  // a signal, ctest's timeout), the server and its files must not outlive it.
  process.on("exit", () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
    }
    fs.rmSync(server.tmp, { recursive: true, force: true });
  });
  server.exit = new Promise((resolve) => {
    child.on("exit", (code, signal) => resolve({ code, signal }));
  });
  child.stderr.setEncoding("utf8");
  const ready = new Promise((resolve, reject) => {
    child.stderr.on("data", (chunk) => {
      server.log += chunk;
      const m = LISTENING.exec(server.log);
      if (m) {
        resolve(`http://${m[1]}:${m[2]}`);
      }
    });
    child.on("error", reject);
    server.exit.then(({ code, signal }) => reject(new Error(
      `server exited (${code ?? signal}) before listening:\n${server.log}`)));
  });
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(
      `server not listening after ${STARTUP_MS} ms:\n${server.log}`)), STARTUP_MS);
  });
  try {
    server.base = await Promise.race([ready, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// SIGTERM must stop it cleanly: exit 0 (API.md 1).
async function stopServer() {
  if (!server.child || server.child.exitCode !== null || server.child.signalCode !== null) {
    return server.exit && server.exit;
  }
  server.child.kill("SIGTERM");
  let timer;
  const result = await Promise.race([server.exit, new Promise((resolve) => {
    timer = setTimeout(() => resolve(null), STOP_MS);
  })]);
  clearTimeout(timer);
  if (result === null) {
    server.child.kill("SIGKILL");
    await server.exit;
    throw new Error(`server did not stop within ${STOP_MS} ms of SIGTERM`);
  }
  return result;
}

// A request from outside the page: someone else using the API.
async function api(method, urlPath, body) {
  const init = { method, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(server.base + urlPath, init);
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: text ? JSON.parse(text) : null };
}

// ---- the browser ------------------------------------------------------------

let browser;
let page;
// Uncaught exceptions and console errors of the page; each fails the run
// unless `expected` says it is the one a step asked for.
const problems = [];
let expected = null;

const testid = (id) => `[data-testid="${id}"]`;
const notifications = (movieId) => page.locator(
  `${testid("notifications")} > ${testid("notification")}[data-movie-id="${movieId}"]`);

before(async () => {
  await startServer();
  // As root (CI, this machine) Chromium's sandbox cannot start.
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  page = await browser.newPage();
  page.setDefaultTimeout(APPEAR_MS);
  page.on("pageerror", (err) => problems.push(`page error: ${err.stack || err}`));
  page.on("console", (msg) => {
    if (msg.type() !== "error") {
      return;
    }
    const where = msg.location().url || "";
    if (expected && expected(msg.text(), where)) {
      expected = null;
      return;
    }
    problems.push(`console error: ${msg.text()} (${where})`);
  });
});

after(async () => {
  try {
    if (browser) {
      await browser.close();
    }
    const result = await stopServer();
    if (result) {
      assert.deepEqual(result, { code: 0, signal: null },
        `server did not exit 0 on SIGTERM:\n${server.log}`);
    }
  } finally {
    if (server.tmp) {
      fs.rmSync(server.tmp, { recursive: true, force: true });
    }
  }
});

// ---- the steps, in order: each builds on the one before -----------------------

// A step after a failed one is skipped: its failure would say nothing new.
let failed = null;
function step(name, fn) {
  test(name, async (t) => {
    if (failed) {
      t.skip(`"${failed}" failed`);
      return;
    }
    try {
      await fn();
    } catch (err) {
      failed = name;
      throw err;
    }
  });
}

// Filled in by the steps: the movie subscribed to (a) and one that is not (b).
let a;
let b;
let moved;

step("GET / is the page, and its assets are served with their types", async () => {
  const index = await fetch(`${server.base}/`);
  assert.equal(index.status, 200);
  assert.match(index.headers.get("content-type") || "", /^text\/html/);
  assert.match(await index.text(), /<script type="module" src="web\/app.js">/);
  for (const [name, type] of [["app.js", /^(text|application)\/javascript/],
    ["style.css", /^text\/css/]]) {
    const res = await fetch(`${server.base}/web/${name}`);
    assert.equal(res.status, 200, `GET /web/${name}`);
    assert.match(res.headers.get("content-type") || "", type, `Content-Type of ${name}`);
    assert.equal(res.headers.get("cache-control"), "no-cache", `Cache-Control of ${name}`);
    const etag = res.headers.get("etag");
    assert.ok(etag, `ETag of ${name}`);
    await res.arrayBuffer();
    const again = await fetch(`${server.base}/web/${name}`, { headers: { "If-None-Match": etag } });
    assert.equal(again.status, 304, `GET /web/${name} with its ETag`);
  }
  const missing = await api("GET", "/web/nothing.js");
  assert.equal(missing.status, 404);
  assert.equal(missing.json.requestError.serviceException.messageId, "SVC3000");
});

step("the page lists the movies", async () => {
  const res = await page.goto(`${server.base}/`);
  assert.equal(res.status(), 200);
  assert.equal(await page.title(), "ncserver: movie premieres");
  const list = (await api("GET", "/movies/v1/movies?limit=1000")).json.movieList.movie;
  assert.ok(list.length >= 2, "the seed has movies");
  [a, b] = list;
  const rows = page.locator(testid("movie-row"));
  await rows.first().waitFor();
  assert.equal(await rows.count(), list.length);
  const first = page.locator(`${testid("movie-row")}[data-movie-id="${a.movieId}"]`);
  assert.equal(await first.locator(testid("movie-title")).textContent(), a.title);
  assert.equal(await first.locator(testid("movie-director")).textContent(), a.director);
  assert.equal(await first.locator(testid("movie-premiere")).textContent(), a.premiereDate);
  assert.equal(await page.locator(testid("connection-state")).textContent(), "not connected");
});

step("subscribing opens the channel's WebSocket and makes a subscription", async () => {
  // By label and role, as a person (or a screen reader) finds them.
  await page.getByLabel("Movie", { exact: true }).selectOption(String(a.movieId));
  await page.getByRole("button", { name: "Subscribe" }).click();
  await page.locator(`${testid("connection-state")}[data-state="connected"]`).waitFor();
  await page.locator(`${testid("subscription")}[data-movie-id="${a.movieId}"]`).waitFor();
  assert.equal(await page.locator(testid("error")).isVisible(), false,
    await page.locator(testid("error")).textContent());
});

step("moving the premiere in the page shows its notification", async () => {
  moved = a.premiereDate === "2031-04-17" ? "2031-04-18" : "2031-04-17";
  await page.getByLabel("New premiere date").fill(moved);
  await page.getByRole("button", { name: "Move premiere" }).click();
  await notifications(a.movieId)
    .filter({ hasText: `Premiere of ${a.title} moved from ${a.premiereDate} to ${moved}` })
    .waitFor();
  const row = page.locator(`${testid("movie-row")}[data-movie-id="${a.movieId}"]`);
  assert.equal(await row.locator(testid("movie-premiere")).textContent(), moved);
});

step("a change made outside the page shows its notification too", async () => {
  const res = await api("PATCH", `/movies/v1/movies/${a.movieId}`,
    { movie: { premiereDate: "2032-09-03" } });
  assert.equal(res.status, 200, res.text);
  await notifications(a.movieId)
    .filter({ hasText: `Premiere of ${a.title} moved from ${moved} to 2032-09-03` })
    .waitFor();
});

step("a change to a movie not subscribed to shows nothing", async () => {
  const res = await api("PATCH", `/movies/v1/movies/${b.movieId}`,
    { movie: { premiereDate: "2030-01-01" } });
  assert.equal(res.status, 200, res.text);
  // No sleep to prove an absence: a change to the subscribed movie made
  // after it is the marker. One channel delivers in order, so once the
  // marker's notification is in the page, one for b would be there too.
  const marker = await api("PATCH", `/movies/v1/movies/${a.movieId}`,
    { movie: { director: "Marker Test" } });
  assert.equal(marker.status, 200, marker.text);
  await notifications(a.movieId)
    .filter({ hasText: `Director of ${a.title} changed from ${a.director} to Marker Test` })
    .waitFor();
  assert.equal(await notifications(b.movieId).count(), 0);
  assert.equal(await page.locator(testid("notification")).filter({ hasText: b.title }).count(), 0);
  // Three notifications, all for a, newest first.
  const texts = await page.locator(testid("notification")).allTextContents();
  assert.equal(texts.length, 3, texts.join("\n"));
  assert.match(texts[0], /Director of .* changed/);
  assert.match(texts[2], new RegExp(`moved from ${a.premiereDate} to ${moved}`));
});

step("the server's error text is shown", async () => {
  // An empty date goes to the server as it is; the browser logs the 400.
  expected = (text, where) => /status of 400/.test(text)
    && where.endsWith(`/movies/v1/movies/${a.movieId}`);
  await page.getByLabel("New premiere date").fill("");
  await page.getByRole("button", { name: "Move premiere" }).click();
  const error = page.locator(testid("error"));
  await error.filter({ hasText: "Invalid input value for message part premiereDate" }).waitFor();
  assert.equal(await page.getByRole("alert").textContent(), await error.textContent());
  assert.equal(await page.locator(testid("connection-state")).getAttribute("data-state"),
    "connected");
});

test("the page logged no errors", () => {
  assert.deepEqual(problems, []);
});
