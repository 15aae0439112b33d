/* Static files from one directory (the web root), for res.file
 * (core/script.h): path checks, content types, validators and conditional
 * requests. Reads the file whole; no sockets. */
#ifndef NC_STATIC_H
#define NC_STATIC_H

#include "http.h"

/* Fills *res (zeroed by the caller; release with nc_http_response_free)
 * with file `rel` under `root` as the answer to `req`: 200 with the file,
 * or 304 when req's If-None-Match or If-Modified-Since say the client has
 * it. `root` is a canonical path (realpath) without a trailing slash.
 * Returns 0 when *res was filled; -1 when there is nothing to serve: a
 * path that could leave the root (empty or "." / ".." segments, a segment
 * starting with ".", a backslash, a symlink resolving outside), no such
 * regular file, or one larger than max_bytes; *why then says which, for
 * the log. */
int nc_static_serve(const char *root, const char *rel, size_t max_bytes,
                    const nc_http_request_t *req, nc_http_response_t *res,
                    const char **why);

/* The Content-Type for a file name, from its extension;
 * "application/octet-stream" when unknown. */
const char *nc_static_content_type(const char *name);

#endif
