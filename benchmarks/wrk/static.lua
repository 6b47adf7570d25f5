-- The same request over and over: the path and headers come from the command line
-- (-H); a first argument is a JSON body, sent with POST.
dofile("common.lua")

function init(args)
   if args[1] then
      wrk.method = "POST"
      wrk.body = args[1]
      wrk.headers["Content-Type"] = "application/json"
   end
end
