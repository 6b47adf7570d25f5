-- PUT /api/v1/users/{id}: a new name each time, for the users in the file named by the
-- first argument ("<id> <version>" a line). Sends If-Match with the version last seen,
-- as a careful client does, and learns the new one from each answer's ETag.
dofile("common.lua")

local ids, etags, i, n, tag, headers = {}, {}, 0, 0, "", nil

function init(args)
   for _, line in ipairs(lines(args[1])) do
      local id, version = line:match("^(%S+)%s+(%d+)$")
      table.insert(ids, id)
      etags[id] = '"' .. version .. '"'
   end
   tag = args[2] or "x"
   headers = base_headers()
   headers["Content-Type"] = "application/json"
end

function request()
   i = i % #ids + 1
   n = n + 1
   local id = ids[i]
   headers["If-Match"] = etags[id]
   local body = string.format('{"name":"Bench %s %d","role":"user"}', tag, n)
   return wrk.format("PUT", "/api/v1/users/" .. id, headers, body)
end

function response(status, response_headers, body)
   count(status, body)
   local id = body:match('"id"%s*:%s*"([^"]+)"')
   local etag = response_headers["etag"] or response_headers["ETag"]
   if id and etag then
      etags[id] = etag
   end
end
