-- Movies, the demo enabler's resource (API.md 3). Applied once by the core,
-- inside a transaction, which also records it: no BEGIN/COMMIT here and no
-- migrations table.
--
-- The scripts validate every field before writing (movies/validate.lua);
-- the CHECKs are a backstop so that no path, present or future, can store
-- a movie the API could not have accepted.
CREATE TABLE movies (
  -- AUTOINCREMENT: the id of a deleted movie is never given to a new one,
  -- so a subscription filtering on movieId 42 cannot start hearing about a
  -- different film after the first is deleted.
  movie_id      INTEGER PRIMARY KEY AUTOINCREMENT,
  title         TEXT NOT NULL CHECK (title <> ''),
  -- YYYY-MM-DD naming a real day: the julianday round trip turns
  -- 2023-02-30 into 2023-03-02 and rejects it; the GLOB rejects "2023-2-3".
  premiere_date TEXT NOT NULL
                CHECK (premiere_date GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'
                       AND date(julianday(premiere_date)) = premiere_date),
  director      TEXT CHECK (director <> ''),
  genre         TEXT CHECK (genre <> ''),
  -- ISO 8601 UTC with milliseconds, e.g. 2026-11-28T12:00:00.123Z; text in
  -- this fixed form sorts in time order.
  last_modified TEXT NOT NULL
                CHECK (last_modified GLOB
                  '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z')
);

-- No index for the title filter: it is a case-insensitive substring match
-- (instr(lower(title), lower(?))), which no B-tree index can serve; an
-- index on title would only cost writes. Listing is in movie_id order,
-- which the primary key already gives. With thousands of movies a scan is
-- well under a millisecond; revisit with FTS5 if the catalogue grows.
