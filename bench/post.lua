-- wrk script of `python -m bench`: POST audit records from a template file (bench/workload.py).
--
--   wrk ... -s bench/post.lua http://127.0.0.1:PORT -- TEMPLATES SALT
--
-- Each thread walks the templates from its own offset and fills in a unique id (@ID@) and,
-- in templates that have it, a unique phrase (@WORDS@) that makes the embedding text new.
-- SALT (letters only) makes ids and phrases unique across wrk runs too (warm-up, then the
-- measured run). Every response that is not 2xx is counted; done() prints one line
-- "BENCH_RESULT {json}" that bench/wrk.py parses.

local threads = {}
local paths, bodies = {}, {}
local counter = 0
local salt = ""
local headers = { ["Content-Type"] = "application/json" }
non2xx = 0

-- 64 ordinary words: a request's phrase is its counter written in base 64 with them.
local words = {
  "amber", "basalt", "cedar", "delta", "ember", "falcon", "garnet", "harbor",
  "indigo", "juniper", "kestrel", "lantern", "meadow", "nickel", "orchid", "pepper",
  "quartz", "raven", "saffron", "timber", "umber", "violet", "willow", "yarrow",
  "zephyr", "anchor", "bramble", "copper", "dune", "elm", "fjord", "glacier",
  "hazel", "iris", "jasper", "kelp", "lichen", "maple", "nectar", "oak",
  "pebble", "quill", "reed", "sorrel", "thistle", "upland", "vale", "wren",
  "acorn", "birch", "clover", "dahlia", "egret", "fern", "grove", "heron",
  "islet", "jade", "kiln", "larch", "moss", "nutmeg", "opal", "pine",
}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_id", #threads)
end

function init(args)
  local file = assert(io.open(args[1], "r"))
  for line in file:lines() do
    local path, body = line:match("^([^\t]+)\t(.*)$")
    table.insert(paths, path)
    table.insert(bodies, body)
  end
  file:close()
  salt = args[2]
  -- Threads start far apart in the template list.
  counter = (thread_id - 1) * math.floor(#bodies / 2 + 1)
end

local function phrase(n)
  local parts = {}
  for i = 1, 4 do
    parts[i] = words[n % 64 + 1]
    n = math.floor(n / 64)
  end
  return table.concat(parts, " ")
end

function request()
  counter = counter + 1
  local i = counter % #bodies + 1
  local id = salt .. "-" .. thread_id .. "-" .. counter
  local body = bodies[i]:gsub("@ID@", id)
  if body:find("@WORDS@", 1, true) then
    body = body:gsub("@WORDS@", salt .. " " .. words[thread_id % 64 + 1] .. " " .. phrase(counter))
  end
  return wrk.format("POST", paths[i], headers, body)
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
end

function done(summary, latency, requests)
  local non = 0
  for _, thread in ipairs(threads) do
    non = non + thread:get("non2xx")
  end
  local errors = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "non2xx": %d, "errors_connect": %d, ' ..
    '"errors_read": %d, "errors_write": %d, "errors_timeout": %d, "latency_mean_us": %.1f, ' ..
    '"latency_p50_us": %d, "latency_p95_us": %d, "latency_p99_us": %d, "latency_max_us": %d}\n',
    summary.requests, summary.duration, non, errors.connect, errors.read, errors.write, errors.timeout,
    latency.mean, latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
