-- POST /api/v1/auth/refresh. Each refresh token can be used once (rotation with reuse
-- detection), so each is sent once: the tokens from the file named by the first
-- argument (one session each), then the new token of every answer, as a client does.
-- The file needs more tokens than connections; a failed answer ends its session's chain.
dofile("common.lua")

local queue, first, last, headers = {}, 1, 0, nil

local function push(token)
   last = last + 1
   queue[last] = token
end

function init(args)
   for _, token in ipairs(lines(args[1])) do
      push(token)
   end
   headers = base_headers()
   headers["Content-Type"] = "application/json"
end

function request()
   local token = "none-left"
   if first <= last then
      token = queue[first]
      queue[first] = nil
      first = first + 1
   end
   return wrk.format("POST", "/api/v1/auth/refresh", headers, '{"refresh_token":"' .. token .. '"}')
end

function response(status, response_headers, body)
   count(status, body)
   local token = body:match('"refresh_token"%s*:%s*"([^"]+)"')
   if token then
      push(token)
   end
end
