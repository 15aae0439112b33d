-- A stand-in for package.loaded.core (core/script.h) so specs run the
-- scripts without the server.
--
-- core.db is a real in-memory SQLite (lua-sql-sqlite3, a Debian package)
-- with the project's sql/ migrations applied, so specs exercise the real
-- SQL and the real constraints. LuaSQL has no bound parameters, so this
-- fake substitutes each "?" with a quoted literal itself; the scripts
-- still only ever pass values separately, as they must with the real core.
--
--   local fake_core = require("support.fake_core")
--   local core = fake_core.install({ seed = false })  -- package.loaded.core
--   core.set_time(1764331200.123); core.advance(0.001)
--   core.db.fail_with("disk I/O error")   -- every call fails until cleared
--   core.logs  -- { { level, message }, ... }
--   fake_core.install({ hub = true }).hub  -- a spec/support/fake_hub
local luasql = require("luasql.sqlite3")
local fake_hub = require("support.fake_hub")

local M = {}

local SQL_DIR = "sql"

-- The messages SQLite gives for statements that do not compile; the real
-- core raises for those (they are bugs), and so does this fake.
local COMPILE_ERRORS = { "syntax error", "no such table", "no such column",
  "no such function", "incomplete input", "wrong number of arguments",
  "near \"" }

local function sql_literal(v)
  local t = type(v)
  if v == nil then
    return "NULL"
  elseif t == "boolean" then
    return v and "1" or "0"
  elseif t == "number" then
    if math.type(v) == "integer" then
      return string.format("%d", v)
    end
    return string.format("%.17g", v)
  elseif t == "string" then
    return "'" .. v:gsub("'", "''") .. "'"
  end
  error("bad argument to core.db: cannot bind a " .. t, 3)
end

-- Replaces each "?" outside quotes with the next argument.
local function bind(sql, ...)
  local args = table.pack(...)
  local out, n, i, quote = {}, 0, 1, nil
  while i <= #sql do
    local c = sql:sub(i, i)
    if quote then
      if c == quote then
        quote = nil
      end
      out[#out + 1] = c
    elseif c == "'" or c == '"' then
      quote = c
      out[#out + 1] = c
    elseif c == "?" then
      n = n + 1
      out[#out + 1] = sql_literal(args[n])
    else
      out[#out + 1] = c
    end
    i = i + 1
  end
  if n ~= args.n then
    error(string.format("bad argument to core.db: %d parameters, %d values",
      n, args.n), 3)
  end
  return table.concat(out)
end

-- True while `buf` holds a CREATE TRIGGER whose body (BEGIN ... END) is
-- not over: its ";" are the body's own.
local function in_trigger(buf)
  local s = table.concat(buf):upper()
  return s:match("^%s*CREATE%s+TRIGGER%s") ~= nil and s:match("%f[%w]END%s*$") == nil
end

-- Splits a migration file into statements at ";" outside quotes, comments
-- and trigger bodies (LuaSQL runs one statement per call; the real core
-- runs the whole file).
local function split_statements(text)
  local stmts, buf, i, quote = {}, {}, 1, nil
  while i <= #text do
    local c = text:sub(i, i)
    if quote then
      buf[#buf + 1] = c
      if c == quote then
        quote = nil
      end
      i = i + 1
    elseif c == "'" or c == '"' then
      quote = c
      buf[#buf + 1] = c
      i = i + 1
    elseif text:sub(i, i + 1) == "--" then
      local e = text:find("\n", i, true) or #text
      i = e + 1
    elseif c == ";" and not in_trigger(buf) then
      local s = table.concat(buf):match("^%s*(.-)%s*$")
      if s ~= "" then
        stmts[#stmts + 1] = s
      end
      buf = {}
      i = i + 1
    else
      buf[#buf + 1] = c
      i = i + 1
    end
  end
  local rest = table.concat(buf):match("^%s*(.-)%s*$")
  if rest ~= "" then
    stmts[#stmts + 1] = rest
  end
  return stmts
end

local function migration_files()
  local files = {}
  local p = io.popen('ls "' .. SQL_DIR .. '"')
  for name in p:lines() do
    if name:match("^%d%d%d_.*%.sql$") then
      files[#files + 1] = name
    end
  end
  p:close()
  table.sort(files)
  return files
end

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  return text
end

local function is_compile_error(msg)
  for _, pattern in ipairs(COMPILE_ERRORS) do
    if tostring(msg):find(pattern, 1, true) then
      return true
    end
  end
  return false
end

local function new_db(opts)
  local env = assert(luasql.sqlite3())
  local conn = assert(env:connect(":memory:"))
  local db = { statements = {} }
  local failure = nil
  local in_tx = false

  local function run(sql, ...)
    if type(sql) ~= "string" then
      error("bad argument #1 to core.db: SQL text expected", 3)
    end
    -- The SQL as the script wrote it, before binding: specs check that no
    -- value was ever spliced into it.
    db.statements[#db.statements + 1] = sql
    local text = bind(sql, ...)
    if failure then
      return nil, failure
    end
    local cur, err = conn:execute(text)
    if cur == nil then
      err = tostring(err):gsub("^LuaSQL: ", "")
      if is_compile_error(err) then
        error("core.db: " .. err .. " in: " .. sql, 3)
      end
      return nil, err
    end
    return cur
  end

  local function fetch_all(cur)
    local rows = {}
    if type(cur) == "userdata" then
      while true do
        local row = cur:fetch({}, "a")
        if not row then
          break
        end
        rows[#rows + 1] = row
      end
      cur:close()
    end
    return rows
  end

  -- INSERT ... RETURNING, which LuaSQL runs twice: it steps a statement
  -- once to see whether it has rows, then resets it and steps it again for
  -- the cursor, and SQLite does every change of a RETURNING statement at
  -- its first step, so each run inserts. The real core steps once. Here
  -- the statement runs without its RETURNING clause and the rows it added
  -- are read back by rowid (SQLite gives new rows rowids above every
  -- existing one). Only INSERT into a rowid table is supported; EXPLAIN
  -- QUERY PLAN of such a statement changes nothing and runs as it is.
  local function insert_returning(sql, ...)
    local head, columns = sql:match("^(.-)%s+RETURNING%s+(.-)%s*;?%s*$")
    local target = head:match("INSERT%s+INTO%s+([%w_]+)")
    if not target then
      error("fake core: RETURNING is supported on INSERT only: " .. sql, 3)
    end
    local before = fetch_all(assert(conn:execute("SELECT coalesce(max(rowid), 0) AS m FROM "
      .. target)))[1].m
    local cur, err = run(head, ...)
    if cur == nil then
      return nil, err
    end
    db.statements[#db.statements] = sql
    return fetch_all(assert(conn:execute("SELECT " .. columns .. " FROM " .. target
      .. " WHERE rowid > " .. string.format("%d", before) .. " ORDER BY rowid")))
  end

  function db.query(sql, ...)
    if type(sql) == "string" and sql:find("%f[%w]RETURNING%f[%W]")
        and not sql:match("^%s*EXPLAIN") then
      return insert_returning(sql, ...)
    end
    local cur, err = run(sql, ...)
    if cur == nil then
      return nil, err
    end
    return fetch_all(cur)
  end

  function db.exec(sql, ...)
    local cur, err = run(sql, ...)
    if cur == nil then
      return nil, err
    end
    if type(cur) == "userdata" then
      cur:close()
      return 0, math.tointeger(conn:getlastautoid())
    end
    return math.tointeger(cur), math.tointeger(conn:getlastautoid())
  end

  function db.transaction(fn, ...)
    if in_tx then
      error("core.db.transaction: nested transaction", 2)
    end
    assert(conn:execute("BEGIN IMMEDIATE"))
    in_tx = true
    local results = table.pack(pcall(fn, ...))
    in_tx = false
    if not results[1] then
      assert(conn:execute("ROLLBACK"))
      error(results[2], 0)
    end
    assert(conn:execute("COMMIT"))
    return table.unpack(results, 2, results.n)
  end

  -- Makes every later call fail with `msg` (nil restores the database),
  -- as SQLite does when the disk is full or the file is locked.
  function db.fail_with(msg)
    failure = msg
  end

  function db.close()
    conn:close()
    env:close()
  end

  -- Applies one migration file, as the core does: every statement in one
  -- transaction.
  function db.migrate(name)
    assert(conn:execute("BEGIN IMMEDIATE"))
    for _, stmt in ipairs(split_statements(read_file(SQL_DIR .. "/" .. name))) do
      local ok, err = conn:execute(stmt)
      if not ok then
        conn:execute("ROLLBACK")
        error("migration " .. name .. " failed: " .. tostring(err))
      end
    end
    assert(conn:execute("COMMIT"))
  end

  for _, name in ipairs(migration_files()) do
    if not (opts.seed == false and name:match("_seed%.sql$"))
        and not (opts.before and name >= opts.before) then
      db.migrate(name)
    end
  end
  return db
end

-- A fresh fake core.
--   opts.seed = false: leave out the *_seed.sql migrations (empty table).
--   opts.before = "005": apply only the migrations named before that
--             (core.db.migrate(name) applies one later).
--   opts.public_url: core.config.public_url (default http://nc.example:8080).
--   opts.now: starting clock in seconds (default 1764331200.0,
--             2025-11-28T12:00:00.000Z).
--   opts.hub = true: a core.hub (spec/support/fake_hub); none by default,
--             as before the core had one.
--   opts.config: extra core.config keys.
function M.new(opts)
  opts = opts or {}
  local core = { logs = {} }
  if opts.hub then
    core.hub = fake_hub.new()
  end
  local clock = opts.now or 1764331200.0
  local ids = 0

  core.db = new_db(opts)

  function core.log(level, message)
    assert(level == "debug" or level == "info" or level == "warn"
      or level == "error", "bad log level " .. tostring(level))
    core.logs[#core.logs + 1] = { level, message }
  end

  function core.now()
    return clock
  end

  function core.set_time(t)
    clock = t
  end

  function core.advance(dt)
    clock = clock + dt
  end

  -- Predictable ids ("id1", "id2", ...) so specs can name them.
  function core.random_id()
    ids = ids + 1
    return "id" .. ids
  end

  local config = {
    public_url = opts.public_url or "http://nc.example:8080",
    listen = "127.0.0.1:0",
    db = ":memory:",
    scripts = "scripts",
  }
  for k, v in pairs(opts.config or {}) do
    config[k] = v
  end
  core.config = setmetatable({}, {
    __index = config,
    __newindex = function()
      error("core.config is read-only", 2)
    end,
  })

  -- The log lines at `level` whose message contains `text`.
  function core.logged(level, text)
    local found = {}
    for _, entry in ipairs(core.logs) do
      if entry[1] == level and (not text or entry[2]:find(text, 1, true)) then
        found[#found + 1] = entry[2]
      end
    end
    return found
  end

  return core
end

-- Installs a fresh fake as package.loaded.core and returns it.
function M.install(opts)
  local core = M.new(opts)
  package.loaded.core = core
  return core
end

-- The ctx the app builds from core (see app.lua), for specs that call
-- handlers directly.
function M.ctx(core)
  return {
    db = core.db,
    now = core.now,
    log = core.log,
    random_id = core.random_id,
    public_url = core.config.public_url,
  }
end

return M
