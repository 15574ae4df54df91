-- GET /api/incidents/{id}, a random incident of the whole history each time.
request = function()
   return wrk.format("GET", "/api/incidents/" .. pick(incident_ids))
end
