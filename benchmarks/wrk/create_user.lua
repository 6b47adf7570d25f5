-- POST /api/v1/users (admin): a new account each time, its email unique by a counter
-- and the run's tag (first argument). The server hashes its password (bcrypt).
dofile("common.lua")

local n, tag, headers = 0, "x", nil

function init(args)
   tag = args[1] or tag
   headers = base_headers()
   headers["Content-Type"] = "application/json"
end

function request()
   n = n + 1
   local body = string.format(
      '{"email":"bench-%s-%d@example.com","name":"Bench New %d",'
         .. '"password":"quiet-lantern-harbour-%d","role":"user"}',
      tag, n, n, n
   )
   return wrk.format("POST", "/api/v1/users", headers, body)
end
