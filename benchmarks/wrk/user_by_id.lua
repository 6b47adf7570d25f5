-- GET /api/v1/users/{id}, cycling through the ids in the file named by the first argument.
dofile("common.lua")

local ids, i, headers = {}, 0, nil

function init(args)
   ids = lines(args[1])
   headers = base_headers()
end

function request()
   i = i % #ids + 1
   return wrk.format("GET", "/api/v1/users/" .. ids[i], headers)
end
