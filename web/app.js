// The page behind GET /: lists the movies, subscribes to one through a
// WebSockets notification channel (API.md 2 and 3), shows the
// notifications as they arrive and moves premiere dates.
//
// Plain browser JavaScript (fetch and WebSocket), no framework and no
// build step. Every URL is relative to the page, so it works wherever the
// server's public URL puts it; the URLs the server hands out (channelURL,
// callbackURL, resourceURL) are used exactly as given.
//
// Text from the server (titles, error texts) only ever goes into
// textContent: a movie title is anyone's input.

// OMA NC Appendix I: the upgrade must offer this subprotocol.
const SUBPROTOCOL = "notificationchannel-netapi-rest.openmobilealliance.org";
const MOVIES = "movies/v1/movies";
// The server's largest page (scripts/movies/api.lua); the demo has fewer.
const MOVIE_LIMIT = 1000;
// A connection that drops is retried after 1 s, then 2, 4... up to 30 s.
const RECONNECT_FIRST_MS = 1000;
const RECONNECT_MAX_MS = 30000;

const FIELD_LABELS = { director: "Director", genre: "Genre" };

const ui = {
  state: document.getElementById("connection-state"),
  select: document.getElementById("movie-select"),
  subscribe: document.getElementById("subscribe-button"),
  date: document.getElementById("premiere-input"),
  move: document.getElementById("move-button"),
  message: document.getElementById("message"),
  error: document.getElementById("error"),
  subscriptions: document.getElementById("subscriptions"),
  notifications: document.getElementById("notifications"),
  movieList: document.getElementById("movie-list"),
};

// One pseudonymous user per page load (API.md 2: a userId such as
// acr:pseudonym123), percent-encoded where it goes into a path.
const userId = "acr:web-" + randomHex(8);
const userPath = encodeURIComponent(userId);

const movies = new Map();         // movieId -> movie, in the server's order
// movieId -> { resourceURL, timer }: the timer fires when it expires.
const subscriptions = new Map();
let channel = null;  // { channelURL, callbackURL, resourceURL, lifetime }
let socket = null;   // the WebSocket of `channel`, while one is open or opening
let reconnectDelay = RECONNECT_FIRST_MS;
let reconnectTimer = null;
let keepAliveTimer = null;

function randomHex(bytes) {
  const a = crypto.getRandomValues(new Uint8Array(bytes));
  return Array.from(a, (b) => b.toString(16).padStart(2, "0")).join("");
}

// ---- talking to the server ------------------------------------------------

// Sends a request with an optional JSON body and returns the JSON answer
// (null when there is none). Any failure throws an Error whose message is
// meant for the user: the server's requestError text with its %1, %2
// filled in from `variables` (OMA NC 6.1.5.7), or why there was no answer.
async function api(method, path, body) {
  const init = { method, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(new URL(path, document.baseURI), init);
  } catch {
    throw new Error("The server cannot be reached.");
  }
  const text = await res.text();
  let doc = null;
  try {
    doc = text ? JSON.parse(text) : null;
  } catch {
    doc = null;
  }
  if (!res.ok) {
    const err = new Error(describeError(res, doc));
    err.status = res.status;
    throw err;
  }
  return doc;
}

function describeError(res, doc) {
  const re = doc && doc.requestError;
  const exc = re && (re.serviceException || re.policyException);
  if (!exc || typeof exc.text !== "string") {
    return `The server answered ${res.status} ${res.statusText}.`.replace(" .", ".");
  }
  const vars = [].concat(exc.variables ?? []);
  const text = exc.text.replace(/%(\d+)/g, (m, n) => vars[n - 1] ?? m);
  return `${text} (${exc.messageId}, HTTP ${res.status})`;
}

// ---- what the user sees ---------------------------------------------------

function setState(state, text) {
  ui.state.dataset.state = state;
  ui.state.textContent = text;
}

function say(text) {
  ui.error.hidden = true;
  ui.error.textContent = "";
  ui.message.textContent = text;
}

function showError(err) {
  ui.message.textContent = "";
  ui.error.textContent = err.message;
  ui.error.hidden = false;
}

function busy(on) {
  ui.subscribe.disabled = on || movies.size === 0;
  ui.move.disabled = on || movies.size === 0;
}

function selectedId() {
  return Number(ui.select.value);
}

function cell(tag, testid, text) {
  const el = document.createElement(tag);
  el.dataset.testid = testid;
  el.textContent = text ?? "";
  return el;
}

function renderMovies() {
  const keep = selectedId();
  ui.movieList.replaceChildren();
  ui.select.replaceChildren();
  for (const m of movies.values()) {
    const row = document.createElement("tr");
    row.dataset.testid = "movie-row";
    row.dataset.movieId = m.movieId;
    row.append(cell("td", "movie-title", m.title), cell("td", "movie-director", m.director),
      cell("td", "movie-premiere", m.premiereDate));
    ui.movieList.append(row);
    const opt = document.createElement("option");
    opt.value = m.movieId;
    opt.textContent = `${m.title} (${m.premiereDate})`;
    ui.select.append(opt);
  }
  if (movies.has(keep)) {
    ui.select.value = String(keep);
  }
  ui.select.disabled = movies.size === 0;
  busy(false);
}

// The date input starts at the chosen movie's premiere, ready to move.
function showSelectedDate() {
  const m = movies.get(selectedId());
  ui.date.disabled = !m;
  ui.date.value = m ? m.premiereDate : "";
}

function renderSubscriptions() {
  ui.subscriptions.replaceChildren();
  for (const id of subscriptions.keys()) {
    const m = movies.get(id);
    const li = cell("li", "subscription", m ? m.title : `movie ${id} (deleted)`);
    li.dataset.movieId = id;
    ui.subscriptions.append(li);
  }
  if (subscriptions.size === 0) {
    const li = document.createElement("li");
    li.className = "empty";
    li.textContent = "nothing yet";
    ui.subscriptions.append(li);
  }
}

function shown(v) {
  return v === undefined || v === null || v === "" ? "(none)" : String(v);
}

function describeChange(field, previous, m) {
  const before = shown(previous[field]);
  const after = shown(m[field]);
  if (field === "premiereDate") {
    return `Premiere of ${m.title} moved from ${before} to ${after}`;
  }
  if (field === "title") {
    return `${before} was renamed ${after}`;
  }
  return `${FIELD_LABELS[field] || field} of ${m.title} changed from ${before} to ${after}`;
}

// One sentence for a movieNotification (API.md 3).
function describeMovieNotification(n) {
  const m = n.movie || {};
  const title = m.title ?? `Movie ${m.movieId}`;
  switch (n.eventType) {
    case "MovieCreated":
      return `New movie: ${title}, premiere ${shown(m.premiereDate)}`;
    case "MovieDeleted":
      return `${title} was deleted`;
    case "MovieUpdated": {
      const fields = [].concat(n.changedFields ?? []);
      if (fields.length === 0) {
        return `${title} was changed`;
      }
      return fields.map((f) => describeChange(f, n.previous || {}, m)).join("; ");
    }
    default:
      return `${n.eventType ?? "Change"}: ${title}`;
  }
}

function addNotification(root, n) {
  const li = document.createElement("li");
  li.dataset.testid = "notification";
  const time = document.createElement("time");
  const now = new Date();
  time.dateTime = now.toISOString();
  time.textContent = now.toLocaleTimeString();
  const text = document.createElement("span");
  if (root === "movieNotification" && n && typeof n === "object") {
    li.dataset.eventType = n.eventType ?? "";
    if (n.movie && n.movie.movieId !== undefined) {
      li.dataset.movieId = n.movie.movieId;
    }
    text.textContent = describeMovieNotification(n);
    applyToMovies(n);
  } else {
    text.textContent = `${root}: ${JSON.stringify(n)}`;
  }
  li.append(time, " ", text);
  ui.notifications.prepend(li);
}

// A notification carries the movie after the change: keep the list true.
function applyToMovies(n) {
  const m = n.movie;
  if (!m || m.movieId === undefined) {
    return;
  }
  if (n.eventType === "MovieDeleted") {
    movies.delete(m.movieId);
  } else {
    movies.set(m.movieId, m);
  }
  renderMovies();
  renderSubscriptions();
  if (selectedId() === m.movieId) {
    showSelectedDate();
  }
}

// ---- the channel and its WebSocket (API.md 2, OMA NC Appendix I) ----------

function send(value) {
  if (socket && socket.readyState === WebSocket.OPEN) {
    socket.send(JSON.stringify(value));
  }
}

function receive(text) {
  let doc;
  try {
    doc = JSON.parse(text);
  } catch {
    // Only a JSON subscription is ever made here, so this is not ours.
    addNotification("message", text);
    return;
  }
  if (doc.connCheck) {
    // I.3: the server's connCheck must be answered, or it closes the
    // connection; the lifetime is the server's to grant, so none is sent.
    send({ connAck: {} });
    return;
  }
  if (doc.connAck) {
    const lifetime = Number(doc.connAck.channelLifetime);
    if (channel && lifetime > 0) {
      channel.lifetime = lifetime;
    }
    return;
  }
  for (const item of [].concat(doc.notificationList ?? [])) {
    for (const [root, n] of Object.entries(item || {})) {
      addNotification(root, n);
    }
  }
}

// I.3: a connCheck restarts the channel's lifetime. Sent at half the
// lifetime, it keeps the channel alive for as long as the page is open.
function keepAlive() {
  clearTimeout(keepAliveTimer);
  const seconds = Math.max(1, (channel ? channel.lifetime : 60) / 2);
  keepAliveTimer = setTimeout(() => {
    send({ connCheck: {} });
    keepAlive();
  }, seconds * 1000);
}

function forgetChannel(why) {
  clearTimeout(reconnectTimer);
  clearTimeout(keepAliveTimer);
  channel = null;
  socket = null;
  // The server removes a channel's subscriptions with it (API.md 3).
  for (const sub of subscriptions.values()) {
    clearTimeout(sub.timer);
  }
  subscriptions.clear();
  renderSubscriptions();
  setState("closed", `closed: ${why}. Subscribe again to open a new channel.`);
}

// Opens the WebSocket of `channel`; resolves once it is open, rejects if
// it closes first.
function connect() {
  setState("connecting", "connecting…");
  const ws = new WebSocket(channel.channelURL, SUBPROTOCOL);
  socket = ws;
  return new Promise((resolve, reject) => {
    ws.onopen = () => {
      reconnectDelay = RECONNECT_FIRST_MS;
      setState("connected", "connected");
      keepAlive();
      resolve();
    };
    ws.onmessage = (ev) => receive(ev.data);
    ws.onclose = (ev) => {
      reject(new Error("The WebSocket could not connect."));
      if (socket !== ws) {
        return;
      }
      socket = null;
      clearTimeout(keepAliveTimer);
      if (ev.code === 1000) {
        // API.md 2: the server closes with 1000 when the channel is
        // deleted or expires, or another connection takes it over: it is
        // not ours any more, and reconnecting would only take it back.
        forgetChannel(ev.reason || "closed by the server");
      } else {
        scheduleReconnect();
      }
    };
  });
}

// Notifications wait on the server while we are away (API.md 2, "Nothing
// lost"), so after a drop we reconnect and get them in order.
function scheduleReconnect() {
  const delay = reconnectDelay;
  reconnectDelay = Math.min(delay * 2, RECONNECT_MAX_MS);
  setState("reconnecting", `disconnected, reconnecting in ${Math.round(delay / 1000)} s`);
  clearTimeout(reconnectTimer);
  reconnectTimer = setTimeout(async () => {
    // A channel that expired meanwhile refuses the upgrade, which a
    // browser reports only as a failed connection: ask its resource.
    try {
      await api("GET", channel.resourceURL);
    } catch (err) {
      if (err.status === 404) {
        forgetChannel("the channel has expired");
        return;
      }
    }
    connect().catch(() => {});
  }, delay);
}

async function ensureChannel() {
  if (channel) {
    return;
  }
  const doc = await api("POST", `notificationchannel/v1/${userPath}/channels`, {
    notificationChannel: { channelType: "WebSockets", channelData: {} },
  });
  const nc = doc.notificationChannel;
  channel = {
    channelURL: nc.channelData.channelURL,
    callbackURL: nc.callbackURL,
    resourceURL: nc.resourceURL,
    lifetime: Number(nc.channelLifetime) || 60,
  };
  await connect();
}

// ---- what the buttons do ----------------------------------------------------

async function subscribe() {
  const id = selectedId();
  const m = movies.get(id);
  if (!m) {
    return;
  }
  if (subscriptions.has(id)) {
    say(`Already subscribed to ${m.title}.`);
    return;
  }
  busy(true);
  try {
    await ensureChannel();
    const doc = await api("POST", `movies/v1/${userPath}/subscriptions`, {
      movieSubscription: {
        callbackReference: {
          notifyURL: channel.callbackURL,
          callbackData: `web page, movie ${id}`,
          notificationFormat: "JSON",
        },
        filter: { movieId: [id] },
      },
    });
    // API.md 3: a subscription lasts the duration the server granted and
    // then ends without a word; the list must not claim it goes on.
    const sub = { resourceURL: doc.movieSubscription.resourceURL, timer: null };
    const seconds = Number(doc.movieSubscription.duration);
    if (seconds > 0 && seconds < 2000000) {
      sub.timer = setTimeout(() => expired(id), seconds * 1000);
    }
    subscriptions.set(id, sub);
    renderSubscriptions();
    say(`Subscribed to ${m.title}.`);
  } catch (err) {
    showError(err);
  } finally {
    busy(false);
  }
}

function expired(id) {
  subscriptions.delete(id);
  renderSubscriptions();
  const m = movies.get(id);
  say(`The subscription to ${m ? m.title : `movie ${id}`} has expired: `
    + "subscribe again to keep hearing about it.");
}

async function movePremiere() {
  const id = selectedId();
  if (!movies.has(id)) {
    return;
  }
  busy(true);
  try {
    // An empty date is sent as it is: the server's answer says what is wrong.
    const doc = await api("PATCH", `${MOVIES}/${id}`, { movie: { premiereDate: ui.date.value } });
    if (doc && doc.movie) {
      movies.set(id, doc.movie);
      renderMovies();
      say(`The premiere of ${doc.movie.title} is now ${doc.movie.premiereDate}.`);
    }
  } catch (err) {
    showError(err);
  } finally {
    busy(false);
  }
}

async function start() {
  ui.select.addEventListener("change", showSelectedDate);
  ui.subscribe.addEventListener("click", subscribe);
  ui.move.addEventListener("click", movePremiere);
  try {
    const doc = await api("GET", `${MOVIES}?limit=${MOVIE_LIMIT}`);
    for (const m of [].concat(doc.movieList.movie ?? [])) {
      movies.set(m.movieId, m);
    }
    renderMovies();
    showSelectedDate();
  } catch (err) {
    ui.select.replaceChildren();
    showError(new Error(`The movies could not be loaded: ${err.message}`));
  }
}

start();
