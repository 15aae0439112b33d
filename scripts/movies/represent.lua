-- Rows of the movies table as API documents (API.md 3).
local json = require("codec.json")

local M = {}

-- The movies collection URL under `public_url` (no trailing slash).
function M.collection_url(public_url)
  return public_url .. "/movies/v1/movies"
end

function M.resource_url(public_url, movie_id)
  return string.format("%s/%d", M.collection_url(public_url), movie_id)
end

-- The movie object of a row. movieId is a JSON number (it is an integer in
-- the schema; API.md 2: xsd:int values are numbers). A NULL director or
-- genre is left out, as OMA leaves out absent optional elements.
function M.movie(row, public_url)
  return {
    movieId = row.movie_id,
    title = row.title,
    premiereDate = row.premiere_date,
    director = row.director,
    genre = row.genre,
    lastModified = row.last_modified,
    resourceURL = M.resource_url(public_url, row.movie_id),
  }
end

-- {"movie": {...}}
function M.document(row, public_url)
  return { movie = M.movie(row, public_url) }
end

-- {"movieList": {"movie": [...], "resourceURL": ...}}; "movie" stays an
-- array when empty or with one item (API.md 2).
function M.list(rows, public_url)
  local movies = json.array()
  for i, row in ipairs(rows) do
    movies[i] = M.movie(row, public_url)
  end
  return {
    movieList = {
      movie = movies,
      resourceURL = M.collection_url(public_url),
    },
  }
end

return M
