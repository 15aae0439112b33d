-- The movie's fields: their names in the API (API.md 3) and in the movies
-- table (sql/001_schema.sql). One place, so validation, representation and
-- change detection cannot disagree about what a movie is.
local M = {}

-- Fields a client may write, in the order errors and changedFields list
-- them.
M.WRITABLE = { "title", "premiereDate", "director", "genre" }

-- Fields the server owns; they may appear in input (a client sending back
-- what it read) but never change anything.
M.READ_ONLY = { "movieId", "lastModified", "resourceURL" }

-- API name -> column; resourceURL has no column, it is derived.
M.COLUMN = {
  movieId = "movie_id",
  title = "title",
  premiereDate = "premiere_date",
  director = "director",
  genre = "genre",
  lastModified = "last_modified",
}

-- Writable fields that may be absent or null (NULL in the table).
M.NULLABLE = { director = true, genre = true }

-- Writable fields a create must carry.
M.REQUIRED_ON_CREATE = { title = true, premiereDate = true }

return M
