-- The mix of routes wrk sends in the load tests (acceptance_tests/load/test_load.py): the app's
-- own routes (one reading the database replica), and the ops views a monitoring system polls.
-- Every one of them answers 2xx, so any other status is a failure.
local paths = {
  "/api/ping",
  "/api/hello",
  "/api/ping",
  "/c2c/health",
  "/api/sleep?seconds=0.01",
  "/c2c/health_check?checks=custom",
  "/c2c/",
}
local counter = 0

request = function()
  counter = counter + 1
  return wrk.format("GET", paths[(counter % #paths) + 1])
end
