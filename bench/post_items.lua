-- wrk script for POST /items: a fixed JSON body, keep-alive, no pipelining.
-- The summary hook (done) comes from wrk_report.lua beside this file.

wrk.method = "POST"
wrk.body = '{"name":"Widget","price":9.99,"tags":["a","b"]}'
wrk.headers["Content-Type"] = "application/json"

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "wrk_report.lua")
