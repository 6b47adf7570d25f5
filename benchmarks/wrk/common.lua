-- Shared by every scenario: counts each answer's status and prints one JSON line at
-- the end, which benchmarks/run.py reads. Scenario scripts `dofile` this first, then
-- define init/request (and response, calling count) as they need.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

statuses = {}
samples = {} -- the first answer of each unexpected status, to show why

function count(status, body)
   statuses[status] = (statuses[status] or 0) + 1
   if (status < 200 or status > 299) and not samples[status] then
      samples[status] = string.sub(body or "", 1, 300)
   end
end

function response(status, headers, body)
   count(status, body)
end

-- wrk.format sends only the headers it is given: keep the ones from `-H`.
function base_headers()
   local headers = {}
   for name, value in pairs(wrk.headers) do
      headers[name] = value
   end
   return headers
end

function lines(path)
   local items = {}
   for line in io.lines(path) do
      if line ~= "" then
         table.insert(items, line)
      end
   end
   return items
end

local function quoted(text)
   text = text:gsub('[%c"\\]', function(c)
      return string.format("\\u%04x", string.byte(c))
   end)
   return '"' .. text .. '"'
end

local function object(pairs_list)
   return "{" .. table.concat(pairs_list, ",") .. "}"
end

function done(summary, latency, requests)
   local total, examples = {}, {}
   for _, thread in ipairs(threads) do
      local counted = thread:get("statuses") or {}
      for status, n in pairs(counted) do
         total[status] = (total[status] or 0) + n
      end
      for status, body in pairs(thread:get("samples") or {}) do
         examples[status] = examples[status] or body
      end
   end
   local shown = {}
   for status, body in pairs(examples) do
      table.insert(shown, string.format('"%d":%s', status, quoted(body)))
   end
   local codes = {}
   for status, n in pairs(total) do
      table.insert(codes, string.format('"%d":%d', status, n))
   end
   local errors = summary.errors
   local percentiles = {}
   for _, p in ipairs({50, 90, 95, 99}) do
      table.insert(percentiles, string.format('"p%d":%d', p, latency:percentile(p)))
   end
   table.insert(percentiles, string.format('"max":%d', latency.max))
   table.insert(percentiles, string.format('"mean":%.1f', latency.mean))
   io.write("WRK_JSON ", object({
      string.format('"requests":%d', summary.requests),
      string.format('"duration_us":%d', summary.duration),
      string.format('"bytes":%d', summary.bytes),
      string.format(
         '"socket_errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d}',
         errors.connect, errors.read, errors.write, errors.timeout
      ),
      '"statuses":' .. object(codes),
      '"samples":' .. object(shown),
      '"latency_us":' .. object(percentiles),
   }), "\n")
end
