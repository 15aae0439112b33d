-- The representations of the movie subscription resources in JSON and
-- XML: codec/representation's codec for movies/subscriptions/types.lua.
--
-- The same rules as the Notification Channel API (API.md 2), from the same
-- code: content negotiation, the schema walk and requestError bodies are
-- codec/representation's, so the two APIs cannot differ in them.
--
-- The normalised value is a Lua table keyed by element names, ints as
-- integers, every repeatable element a sequence (possibly empty), absent
-- optional elements nil. Errors in input name the offending element by
-- its path below the root, joined with "." ("callbackReference.notifyURL",
-- "filter.movieId"); the root itself by its own name. An empty body is a
-- missing document (SVC0002 naming the root) whatever it claims to be.
--
-- JSON (the structure-aware OMA JSON rules): {"movieSubscription": {...}};
-- on input numbers or numeric strings, and a single value where an array
-- may stand. XML: <mv:movieSubscription xmlns:mv="urn:ncserver:xml:movies:1">
-- with unqualified children in schema order.
--
-- The functions (see codec/representation.new): decode(req, root),
-- encode(format, root, value), response(status, format, root, value,
-- extra_headers), negotiate(accept), error_response(err, format).
local representation = require("codec.representation")
local types = require("movies.subscriptions.types")

return representation.new(types)
