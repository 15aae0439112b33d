-- Every SQL statement on the movies table. Values are always bound to "?"
-- parameters, never spliced into the text: core.db caches statements by
-- text, and a title like "'); DROP TABLE movies; --" is just a title.
--
-- `db` is core.db (core/script.h). A failed statement is an expected
-- failure: nil, SVC2001 (503) and the SQLite message as a third value for
-- the caller to log; the client learns nothing of our storage.
local errors = require("codec.errors")

local M = {}

local COLUMNS = "movie_id, title, premiere_date, director, genre, last_modified"

local function failed(msg)
  return nil, errors.new("SVC2001"), msg
end

-- One page of movies in movieId order. `title`, when given, keeps the
-- movies whose title contains it, ignoring ASCII case (SQLite's lower()
-- folds A-Z only). instr() is used rather than LIKE so that "%" and "_" in
-- the filter are plain characters.
function M.list(db, limit, offset, title)
  local rows, err
  if title then
    rows, err = db.query("SELECT " .. COLUMNS .. " FROM movies"
      .. " WHERE instr(lower(title), lower(?)) > 0"
      .. " ORDER BY movie_id LIMIT ? OFFSET ?", title, limit, offset)
  else
    rows, err = db.query("SELECT " .. COLUMNS .. " FROM movies"
      .. " ORDER BY movie_id LIMIT ? OFFSET ?", limit, offset)
  end
  if not rows then
    return failed(err)
  end
  return rows
end

-- The row of movie `id`; nil (and no error) when there is none.
function M.get(db, id)
  local rows, err = db.query("SELECT " .. COLUMNS
    .. " FROM movies WHERE movie_id = ?", id)
  if not rows then
    return failed(err)
  end
  return rows[1]
end

-- Inserts `row` (movie_id ignored: the table assigns it). Returns the new
-- movie_id.
function M.insert(db, row)
  local changes, id = db.exec("INSERT INTO movies"
    .. " (title, premiere_date, director, genre, last_modified)"
    .. " VALUES (?, ?, ?, ?, ?)",
    row.title, row.premiere_date, row.director, row.genre, row.last_modified)
  if not changes then
    return failed(id)
  end
  return id
end

-- Writes every field of `row` over movie row.movie_id. Returns true, or
-- false when that movie is gone.
function M.update(db, row)
  local changes, err = db.exec("UPDATE movies SET title = ?, premiere_date = ?,"
    .. " director = ?, genre = ?, last_modified = ? WHERE movie_id = ?",
    row.title, row.premiere_date, row.director, row.genre, row.last_modified,
    row.movie_id)
  if not changes then
    return failed(err)
  end
  return changes == 1
end

-- Deletes movie `id`. Returns true, or false when it was already gone.
function M.delete(db, id)
  local changes, err = db.exec("DELETE FROM movies WHERE movie_id = ?", id)
  if not changes then
    return failed(err)
  end
  return changes == 1
end

return M
