-- Movie notifications (API.md 3; issue 5, "Notifications"): every create,
-- change or delete of a movie queues one movieNotification per matching
-- live subscription in the outbox, in the transaction of the change
-- (movies/changes.lua calls M.on_change inside it), and once that has
-- committed the channels that got one are woken for delivery
-- (nc/delivery.lua, Delivery:wake_range).
--
-- Fan-out costs one formatting in Lua per change and format, and two SQL
-- statements, whatever the number of subscriptions: the text is made once
-- as a template in each format, holding two placeholders where the parts
-- that differ per subscription go (its callbackData, its resource path in
-- the link). The template is stored once, in outbox_templates
-- (sql/005_outbox_templates.sql), cut at its placeholders; then one
-- INSERT ... SELECT writes one small outbox row per subscription, holding
-- the template's id and that subscription's two parts, and delivery reads
-- the text put back together (nc/store.lua). 10,000 matching
-- subscriptions are 10,000 rows written by one statement, not 10,000
-- trips through Lua, and the text shared by all of them goes through the
-- WAL once, not 10,000 times.
--
-- The notification (API.md 3; the OMA convention of one root element
-- wrapping the object, as for every NC notification):
--
--   {"movieNotification": {
--     "callbackData": "...",             only when the subscription has one
--     "eventType": "MovieCreated" | "MovieUpdated" | "MovieDeleted",
--     "movie": {...},                    as GET /movies/{id} shows it
--     "changedFields": ["premiereDate"], always an array (API.md 2)
--     "previous": {"premiereDate": "2026-05-01"},
--     "link": {"rel": "MovieSubscription", "href": "<subscription URL>"}}}
--
-- What the three events carry (changes.lua computes it):
--   MovieCreated: movie is the movie as created; changedFields names every
--     field that has a value; no previous (there was no movie before).
--   MovieUpdated: movie is the movie after the change; changedFields names
--     the fields whose value changed; previous holds each of those fields'
--     value before, null (JSON) / xsi:nil (XML) for one that had none.
--   MovieDeleted: movie is the movie as it was last; changedFields names
--     every field that had a value (all of them are gone); previous holds
--     their values. So the rule is one: previous gives the value before of
--     each field in changedFields, whenever there was a before.
-- JSON members come in the order above (the rest of each object with keys
-- sorted, as codec/json writes them); XML children come in the same order.
--
-- In XML (the subscription's notificationFormat "XML"):
--   <mv:movieNotification xmlns:mv="urn:ncserver:xml:movies:1">
--     <callbackData>...</callbackData>
--     <eventType>MovieUpdated</eventType>
--     <movie><movieId>1</movieId><title>...</title>...</movie>
--     <changedFields>premiereDate</changedFields>     one per field
--     <previous><premiereDate>2026-05-01</premiereDate></previous>
--     <link rel="MovieSubscription" href="..."/>
--   </mv:movieNotification>
-- with unqualified children, as OMA notifications have them, and the
-- link as OMA's common Link type (rel and href attributes). A previous
-- value that was NULL is <director xsi:nil="true"/> (XML Schema 1, 2.6.2),
-- and only then is the xsi prefix declared.
local errors = require("codec.errors")
local json = require("codec.json")
local xml = require("codec.xml")
local changes = require("movies.changes")
local represent = require("movies.represent")
local store = require("nc.store")

local M = {}

M.ROOT = "movieNotification"
M.NS = "urn:ncserver:xml:movies:1"
M.PREFIX = "mv"
-- link rel of a subscription, as the OMA enablers name theirs after the
-- resource type.
M.LINK_REL = "MovieSubscription"

-- The placeholders a template holds for what SQLite fills in per
-- subscription. They are control characters, which neither encoder ever
-- writes: codec/json escapes U+0001 as \u0001 and codec/xml replaces it
-- (XML 1.0 2.2 does not allow it at all), so no title, director or URL
-- can forge one, and M.templates checks that each occurs exactly once.
M.CALLBACK = "\1cb\1"      -- the whole callbackData member / element
M.SUBSCRIPTION = "\1sub\1" -- the subscription's resource path in the link

-- How the callbackData prepared by the subscriptions
-- (sql/004_movie_subscriptions.sql: callback_data_json is a JSON string
-- literal with its quotes, callback_data_xml escaped character data, both
-- NULL without callbackData) is wrapped where M.CALLBACK stands.
M.CALLBACK_JSON = { open = '"callbackData":', close = "," }
M.CALLBACK_XML = { open = "<callbackData>", close = "</callbackData>" }

local XSI_DECL = ' xmlns:xsi="' .. xml.XSI_NS .. '"'

-- The movie elements in the order API.md 3 lists them.
local MOVIE_ORDER = { "movieId", "title", "premiereDate", "director", "genre",
  "lastModified", "resourceURL" }

local function count(s, plain)
  local n, i = 0, 1
  while true do
    local j = s:find(plain, i, true)
    if not j then
      return n
    end
    n, i = n + 1, j + #plain
  end
end

-- The movie a notification of `change` shows: after the change, or as it
-- was last for a delete.
local function movie_row(change)
  return change.new or change.old
end

local function has_previous(change)
  return change.event ~= changes.CREATED
end

---------------------------------------------------------------------------
-- JSON
---------------------------------------------------------------------------

local function json_template(change, public_url)
  local previous = json.object()
  for _, name in ipairs(change.changed) do
    previous[name] = change.previous[name]
  end
  local href = json.encode(public_url)
  -- The link's href is public_url followed by the subscription's path: the
  -- encoded string with the placeholder before its closing quote.
  href = href:sub(1, -2) .. M.SUBSCRIPTION .. '"'
  local parts = {
    '{"movieNotification":{', M.CALLBACK,
    '"eventType":', json.encode(change.event),
    ',"movie":', json.encode(represent.movie(movie_row(change), public_url)),
    ',"changedFields":', json.encode(json.array({ table.unpack(change.changed) })),
  }
  if has_previous(change) then
    parts[#parts + 1] = ',"previous":' .. json.encode(previous)
  end
  parts[#parts + 1] = ',"link":{"rel":' .. json.encode(M.LINK_REL) .. ',"href":' .. href .. "}}}"
  return table.concat(parts)
end

---------------------------------------------------------------------------
-- XML
---------------------------------------------------------------------------

local function scalar(v)
  if math.type(v) == "integer" then
    return string.format("%d", v)
  end
  return tostring(v)
end

local function element(out, name, value)
  if value == json.null then
    out[#out + 1] = "<" .. name .. ' xsi:nil="true"/>'
    return true
  end
  out[#out + 1] = "<" .. name .. ">" .. xml.escape(scalar(value)) .. "</" .. name .. ">"
  return false
end

local function xml_template(change, public_url)
  local movie = represent.movie(movie_row(change), public_url)
  local body = { M.CALLBACK, "<eventType>", xml.escape(change.event), "</eventType>", "<movie>" }
  for _, name in ipairs(MOVIE_ORDER) do
    if movie[name] ~= nil then
      element(body, name, movie[name])
    end
  end
  body[#body + 1] = "</movie>"
  for _, name in ipairs(change.changed) do
    element(body, "changedFields", name)
  end
  local nil_used = false
  if has_previous(change) then
    body[#body + 1] = "<previous>"
    for _, name in ipairs(change.changed) do
      if element(body, name, change.previous[name]) then
        nil_used = true
      end
    end
    body[#body + 1] = "</previous>"
  end
  body[#body + 1] = '<link rel="' .. xml.escape_attr(M.LINK_REL) .. '" href="'
    .. xml.escape_attr(public_url) .. M.SUBSCRIPTION .. '"/>'
  local tag = M.PREFIX .. ":" .. M.ROOT
  return "<" .. tag .. " xmlns:" .. M.PREFIX .. '="' .. M.NS .. '"'
    .. (nil_used and XSI_DECL or "") .. ">" .. table.concat(body) .. "</" .. tag .. ">"
end

---------------------------------------------------------------------------
-- Templates
---------------------------------------------------------------------------

-- The movieNotification of `change` (movies/changes.lua's record) as a
-- template in each format: { json = text, xml = text }, each holding
-- M.CALLBACK once and, after it, M.SUBSCRIPTION once. public_url has no
-- trailing slash (app.lua strips it).
function M.templates(change, public_url)
  local t = { json = json_template(change, public_url), xml = xml_template(change, public_url) }
  for format, text in pairs(t) do
    for _, p in ipairs({ M.CALLBACK, M.SUBSCRIPTION }) do
      if count(text, p) ~= 1 then
        -- Cannot happen (see M.CALLBACK); a template that broke it would
        -- send every subscriber a wrong or malformed notification.
        error(string.format("movie notification %s template holds %q %d times",
          format, p, count(text, p)), 0)
      end
    end
    if text:find(M.SUBSCRIPTION, 1, true) < text:find(M.CALLBACK, 1, true) then
      error("movie notification " .. format .. " template has the link before callbackData", 0)
    end
  end
  return t
end

-- A template cut at its placeholders: the text before M.CALLBACK, between
-- the two, and after M.SUBSCRIPTION: the head, mid and tail that
-- outbox_templates stores, which delivery joins around each row's parts
-- with || (nc/store.lua).
function M.pieces(template)
  local a = template:find(M.CALLBACK, 1, true)
  local b = template:find(M.SUBSCRIPTION, 1, true)
  return template:sub(1, a - 1), template:sub(a + #M.CALLBACK, b - 1),
    template:sub(b + #M.SUBSCRIPTION)
end

-- What SQLite does per subscription, done in Lua: the notification text
-- for a subscription with `callback` (its callback_data_json or
-- callback_data_xml, nil for none) and `resource_path`. For specs and for
-- anyone who wants one notification without the fan-out.
function M.fill(template, format, callback, resource_path)
  local wrap = format == "json" and M.CALLBACK_JSON or M.CALLBACK_XML
  local cb = callback and (wrap.open .. callback .. wrap.close) or ""
  local before, between, after = M.pieces(template)
  return before .. cb .. between .. resource_path .. after
end

---------------------------------------------------------------------------
-- Fan-out
---------------------------------------------------------------------------

-- One statement: the matching live subscriptions, each getting one outbox
-- row that refers to the change's template and holds the subscription's
-- two parts.
--
-- Matching reads movie_fanout (sql/006_movie_fanout.sql), the fan-out's
-- own copy of each subscription keyed by (movie, subscription) and
-- holding every column written here: two ranges of its primary key, the
-- movie's own (filtered subscriptions) and movie 0's (unfiltered ones), and
-- nothing else, so the cost follows the number of matches, not of
-- subscriptions (EXPLAIN QUERY PLAN, SQLite 3.40):
--   SEARCH movie_fanout USING PRIMARY KEY (movie_id=?)
-- The unary + on the expiry term keeps it a filter on the rows read;
-- expired subscriptions are few (expiry removes them) and are skipped as
-- they are read. A subscription appears once per range it is in, and it is
-- in one only: an unfiltered one has no filter rows in movie_fanout (its
-- trigger skips them), so it never matches twice.
--
-- The channel is not read: a subscription lives no longer than its
-- channel, and a channel past its end that the expiry timer has not yet
-- removed gets rows that go with it (ON DELETE CASCADE) when the timer
-- removes it moments later; delivery never serves an expired channel
-- (nc/channels.lua). Reading each channel by id and its row cost about a
-- quarter of the statement.
--
-- Per row: fill_1 is the subscription's callbackData wrapped for its
-- format (M.CALLBACK_JSON, M.CALLBACK_XML), '' when it has none, built
-- once when the subscription was made; fill_2 its resource_path. Both are
-- copied, so the notification stays as it was queued even if the
-- subscription is deleted before it is delivered. Nothing a client sent is
-- ever searched for a placeholder: the pieces are cut in Lua from text we
-- encoded. resource_path is percent-encoded ASCII (letters, digits,
-- "-._~%/"), safe as it is in a JSON string and in an XML attribute.
--
-- No RETURNING: handing 10,000 channel ids back to Lua inside the
-- transaction made it half as long again (measured). The rows one
-- statement inserts have consecutive seqs (AUTOINCREMENT, and the
-- transaction holds the write lock), so changes() and the last rowid name
-- them all, and delivery finds their channels from that range after the
-- commit, a slice at a time.
--
-- Cost (tests/bench/fanout.py, N = 10,000, 2-vCPU VM shared with other
-- work, SQLite 3.40), PATCH answered in min/median/max: 97/103/121 ms
-- through the filter, subscription and channel joins; 45-67 ms (median
-- 51-56) reading movie_fanout. What is left is mostly the row's own
-- writes (the table,
-- outbox_channel, outbox_template, the foreign key checks on channels and
-- outbox_templates).
--
-- Rows go in as SQLite reads them: the unfiltered subscriptions (movie 0)
-- by subscription_id, then the movie's filtered ones by subscription_id
-- (IN takes its values in ascending order). Order across channels means
-- nothing to delivery, and within a channel one change gives one row per
-- subscription of that channel.
M.FAN_OUT_SQL = [[
INSERT INTO outbox (channel_id, root, format, template_id, fill_1, fill_2, created_at)
SELECT channel_id, ?, notification_format, ?, fill_1, fill_2, ?
  FROM movie_fanout
 WHERE movie_id IN (0, ?) AND +expires_at > ?]]

-- Queues the notifications of `change` for every matching live
-- subscription: stores its template, then the rows. To be called inside
-- the change's transaction. Returns the number of rows queued and, when
-- there are any, the seqs of the first and the last; or nil, SVC2001,
-- detail when a statement failed (the caller rolls the change back).
function M.fan_out(ctx, change)
  local t = M.templates(change, ctx.public_url)
  local now = ctx.now()
  local template_id, err, detail = store.add_template(ctx.db,
    { json = { M.pieces(t.json) }, xml = { M.pieces(t.xml) } }, now)
  if not template_id then
    return nil, err, detail
  end
  local started = ctx.now()
  local n, last = ctx.db.exec(M.FAN_OUT_SQL,
    M.ROOT, template_id, now, change.movie_id, now)
  if not n then
    return nil, errors.new("SVC2001"), last
  end
  if n == 0 then
    -- Nobody to notify: the template goes at once rather than wait for
    -- the sweep.
    local ok
    ok, err, detail = store.drop_template(ctx.db, template_id)
    if ok == nil then
      return nil, err, detail
    end
    return 0
  end
  -- The statement alone (the template insert before it is one row); for
  -- tests/bench/fanout.py.
  ctx.log("debug", string.format("movie %d: fan-out INSERT of %d row(s) took %.0f ms",
    change.movie_id, n, (ctx.now() - started) * 1000))
  return n, last - n + 1, last
end

---------------------------------------------------------------------------
-- The hooks of the movies area (movies/api.lua)
---------------------------------------------------------------------------

-- ctx -> { first, last }: the outbox rows queued by the change whose
-- transaction is open.
local pending = setmetatable({}, { __mode = "k" })

-- ctx.on_change for movies/changes.lua: runs inside the transaction, so
-- the outbox rows commit with the movie or not at all. It only notes which
-- rows they are; M.settled has their channels woken once the transaction
-- is over. A no-op change never gets here (changes.lua does not call
-- on_change for one).
function M.on_change(ctx, change)
  local started = ctx.now()
  local n, first, last = M.fan_out(ctx, change)
  if not n then
    return nil, first, last
  end
  pending[ctx] = n > 0 and { first = first, last = last } or nil
  ctx.log(n > 0 and "info" or "debug", string.format(
    "movie %d %s: %d notification(s) queued in %.0f ms",
    change.movie_id, change.event, n, (ctx.now() - started) * 1000))
  return true
end

-- After changes.apply returned: when the change committed (`committed`
-- true), its outbox rows are handed to ctx.wake_outbox(first_seq,
-- last_seq) (nc/delivery.lua's wake-up queue, which finds and feeds their
-- channels; app.lua wires it), never from inside the transaction. A rolled
-- back change wakes nobody.
function M.settled(ctx, committed)
  local rows = pending[ctx]
  pending[ctx] = nil
  if committed and rows and ctx.wake_outbox then
    ctx.wake_outbox(rows.first, rows.last)
  end
end

return M
